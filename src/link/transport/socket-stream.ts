// A connected net.Socket (Unix or TCP) as a ByteStream. A socket has a
// connection boundary, so the peer leaving is "close", never "hangup".
import type { Socket } from "node:net";
import type { ByteStream } from "./byte-stream.js";
import { StreamEvents } from "./stream-events.js";

export class SocketStream extends StreamEvents implements ByteStream {
  private failure: Error | undefined;

  constructor(
    private readonly socket: Socket,
    readonly description: string,
  ) {
    super();
    socket.on("data", (chunk: Buffer) => this.emit("data", chunk));
    socket.on("drain", () => this.emit("drain"));
    // "error" is always followed by "close"; keep the first cause for it.
    socket.on("error", (err) => {
      this.failure ??= new Error(`${description}: ${err.message}`, { cause: err });
    });
    socket.on("close", () => this.emitClose(this.failure));
  }

  write(chunk: Uint8Array): boolean {
    if (this.socket.destroyed || this.socket.writableEnded) return false;
    return this.socket.write(chunk);
  }

  end(): void {
    this.socket.end();
  }

  destroy(err?: Error): void {
    this.failure ??= err;
    this.socket.destroy();
  }
}
