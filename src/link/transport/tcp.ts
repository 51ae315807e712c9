// TCP transport: the guest link over a TCP connection (QEMU's socket
// chardev with host=,port=), loopback unless explicitly allowed otherwise.
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import type { StreamListener } from "./byte-stream.js";
import { checkListenHost, type NetworkListenOptions } from "./listen-policy.js";
import { closeServer, ListenerEvents } from "./listener-events.js";
import { SocketStream } from "./socket-stream.js";
import { listenProblem, TransportError } from "./transport-error.js";

export function tcpName(host: string, port: number): string {
  return host.includes(":") ? `tcp:[${host}]:${port}` : `tcp:${host}:${port}`;
}

function wrap(socket: Socket, description: string): SocketStream {
  // Link frames are small and latency-bound (a fault waits on each one):
  // Nagle's algorithm would hold a page response back behind an unacked one.
  socket.setNoDelay(true);
  return new SocketStream(socket, description);
}

export function connectTcp(host: string, port: number): Promise<SocketStream> {
  const description = tcpName(host, port);
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port });
    socket.once("error", (err) => {
      reject(new Error(`${description}: cannot connect: ${err.message}; is the peer listening there?`, { cause: err }));
    });
    socket.once("connect", () => {
      socket.removeAllListeners("error");
      resolve(wrap(socket, description));
    });
  });
}

export class TcpListener extends ListenerEvents implements StreamListener {
  /** The bound address; port is the real one when 0 was asked for. */
  readonly address: { host: string; port: number };
  readonly description: string;

  private constructor(private readonly server: Server) {
    super();
    const info = server.address() as AddressInfo;
    this.address = { host: info.address, port: info.port };
    this.description = tcpName(info.address, info.port);
    server.on("error", (err) => this.emitError(err));
    server.on("connection", (socket: Socket) => {
      const peer = tcpName(socket.remoteAddress ?? "?", socket.remotePort ?? 0);
      this.emitConnection(wrap(socket, `${peer} (accepted on ${this.description})`));
    });
  }

  static async listen(host: string, port: number, options: NetworkListenOptions = {}): Promise<TcpListener> {
    checkListenHost("tcp", host, options);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err) => {
        reject(new TransportError(`${tcpName(host, port)}: cannot listen: ${listenProblem({ kind: "tcp", host, port }, err)}`, { cause: err }));
      });
      server.listen({ host, port }, () => {
        server.removeAllListeners("error");
        resolve();
      });
    });
    return new TcpListener(server);
  }

  /** Stops accepting and frees the port; accepted streams stay open. */
  close(): Promise<void> {
    return closeServer(this.server);
  }
}
