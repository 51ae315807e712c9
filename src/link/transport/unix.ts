// Unix socket transport: the guest link over a local stream socket, the way
// QEMU's socket chardev (path=...) connects to the relay or serves it.
import { createConnection, createServer, type Server, type Socket } from "node:net";
import type { StreamListener } from "./byte-stream.js";
import { closeServer, ListenerEvents } from "./listener-events.js";
import { SocketStream } from "./socket-stream.js";
import { listenProblem, TransportError } from "./transport-error.js";
import { listenPrivately, removeStaleSocket } from "./unix-socket-file.js";

/** sockaddr_un.sun_path holds 108 bytes including the terminating NUL. */
const MAX_PATH_BYTES = 107;

function checkPath(path: string): void {
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) {
    throw new TransportError(
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

  /** mode: the socket file's, 0600 (default) or 0660 for the group too. */
  static async listen(path: string, mode?: number): Promise<UnixListener> {
    checkPath(path);
    await removeStaleSocket(path);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err) => {
        reject(new TransportError(`unix:${path}: cannot listen: ${listenProblem({ kind: "unix", path }, err)}`, { cause: err }));
      });
      server.once("listening", () => {
        server.removeAllListeners("error");
        resolve();
      });
      listenPrivately(server, path, mode);
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
