// Unix socket transport: the guest link over a local stream socket, the way
// QEMU's socket chardev (path=...) connects to the relay or serves it.
import { lstat, unlink } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import type { StreamListener } from "./byte-stream.js";
import { closeServer, ListenerEvents } from "./listener-events.js";
import { SocketStream } from "./socket-stream.js";

/** sockaddr_un.sun_path holds 108 bytes including the terminating NUL. */
const MAX_PATH_BYTES = 107;

function checkPath(path: string): void {
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) {
    throw new Error(
      `unix:${path}: the path is ${Buffer.byteLength(path)} bytes; a Unix socket path is limited to ` +
        `${MAX_PATH_BYTES}. Use a shorter path (e.g. under /run).`,
    );
  }
}

export function connectUnix(path: string): Promise<SocketStream> {
  checkPath(path);
  const description = `unix:${path}`;
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path });
    socket.once("error", (err) => {
      reject(new Error(`${description}: cannot connect: ${err.message}; is the peer listening there?`, { cause: err }));
    });
    socket.once("connect", () => {
      socket.removeAllListeners("error");
      resolve(new SocketStream(socket, description));
    });
  });
}

/** Resolves true if something accepts a connection on path, false on ECONNREFUSED. */
function someoneListens(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = createConnection({ path });
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ECONNREFUSED") resolve(false);
      else reject(new Error(`unix:${path}: cannot tell whether the existing socket is in use: ${err.message}`, { cause: err }));
    });
  });
}

/**
 * Removes a socket file left by a listener that died, and refuses to touch
 * anything else: a live socket (another relay is serving it) or a file that
 * is not a socket at all.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (!isSocket) {
    throw new Error(`unix:${path}: the path exists and is not a socket; refusing to replace it. Remove it or choose another path.`);
  }
  if (await someoneListens(path)) {
    throw new Error(`unix:${path}: another process is listening on this socket; stop it or choose another path.`);
  }
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
}

/**
 * Binds with umask 0177 so the socket file is created 0600 in the bind()
 * itself. A chmod after listen() would leave a window in which the kernel
 * already queues connections made through the wider default mode, and Node
 * binds and listens in one call, so there is no point between them to chmod.
 * The umask is process-wide, but bind and listen run synchronously inside
 * server.listen(), so it is restored before any other JavaScript runs; a
 * file another thread creates in that instant can only come out stricter.
 * (process.umask(mask) is unavailable in worker threads: listen from the
 * main thread.)
 */
function listenPrivately(server: Server, path: string): void {
  const previous = process.umask(0o177);
  try {
    server.listen({ path });
  } finally {
    process.umask(previous);
  }
}

export class UnixListener extends ListenerEvents implements StreamListener {
  readonly description: string;

  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {
    super();
    this.description = `unix:${path}`;
    server.on("error", (err) => this.emitError(err));
    server.on("connection", (socket: Socket) => {
      this.emitConnection(new SocketStream(socket, `${this.description} (accepted)`));
    });
  }

  static async listen(path: string): Promise<UnixListener> {
    checkPath(path);
    await removeStaleSocket(path);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err) => {
        reject(new Error(`unix:${path}: cannot listen: ${err.message}; is the directory there and writable?`, { cause: err }));
      });
      server.once("listening", () => {
        server.removeAllListeners("error");
        resolve();
      });
      listenPrivately(server, path);
    });
    return new UnixListener(server, path);
  }

  /** Stops accepting and removes the socket file; accepted streams stay open. */
  close(): Promise<void> {
    // libuv unlinks the path it bound when it closes the handle, before
    // closing the fd, so a socket another process binds there later is safe;
    // unlinking again here could remove that newer socket.
    return closeServer(this.server);
  }
}
