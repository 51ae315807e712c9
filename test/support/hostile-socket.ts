// A guest that writes and never reads: it connects, reads just enough to
// align the relay (the relay's first SYNC, answered with its ACK), then stops
// reading. Everything the relay writes from then on piles up in the relay's
// own write buffer, which is what a flood that asks for replies (SYNCs each
// drawing an ACK and a HELLO, heartbeats with NEED_REPLY) exploits.
import { createConnection, type Socket } from "node:net";
import { encodeMarker, MarkerKind, MARKER_SIZE } from "../../src/link/sync-marker.js";

const SYNC_MAGIC = encodeMarker(MarkerKind.SYNC, 1n).subarray(0, 8);

export async function deafGuest(path: string): Promise<Socket> {
  const socket = createConnection({ path });
  let seen = Buffer.alloc(0);
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    const onData = (chunk: Buffer): void => {
      seen = Buffer.concat([seen, chunk]);
      const at = seen.indexOf(SYNC_MAGIC);
      if (at < 0 || seen.length < at + MARKER_SIZE) return;
      socket.off("data", onData);
      socket.pause();
      socket.write(encodeMarker(MarkerKind.ACK, seen.readBigUInt64LE(at + 8)));
      resolve();
    };
    socket.on("data", onData);
  });
  return socket;
}

/** Writes chunks with backpressure on the writer's side only (it still never reads). */
export async function flood(socket: Socket, chunks: Iterable<Uint8Array>): Promise<void> {
  for (const chunk of chunks) {
    if (socket.destroyed) return;
    if (!socket.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          socket.off("drain", done);
          socket.off("close", done);
          resolve();
        };
        socket.on("drain", done);
        socket.on("close", done);
      });
    }
  }
}
