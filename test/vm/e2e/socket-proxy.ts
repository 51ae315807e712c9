// Host side: a Unix socket between the relay and QEMU's chardev server
// socket that a scenario can cut and mend, so "the host socket drops and
// comes back" happens to the real relay (its connection ends, it reconnects
// with backoff) and to the real guest (QEMU sees its client go, the port
// reports the host gone, then back). While cut, new connections are closed
// at once, as a relay would find a socket whose far end is down.
import { connect, createServer, type Server, type Socket } from "node:net";
import { rmSync } from "node:fs";

export class SocketProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  private cut = false;
  /** Connections made through the proxy so far (the relay's reconnects show here). */
  connections = 0;

  private constructor(private readonly server: Server, private readonly target: string) {
    server.on("connection", (client) => this.onConnection(client));
  }

  static listen(path: string, target: string): Promise<SocketProxy> {
    rmSync(path, { force: true });
    const server = createServer();
    const proxy = new SocketProxy(server, target);
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => resolve(proxy));
    });
  }

  private onConnection(client: Socket): void {
    if (this.cut) {
      client.destroy();
      return;
    }
    this.connections++;
    const upstream = connect(this.target);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const end = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of pair) {
      s.on("error", end);
      s.on("close", end);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Closes every connection through the proxy and refuses new ones until mend(). */
  drop(): void {
    this.cut = true;
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  mend(): void {
    this.cut = false;
  }

  close(): Promise<void> {
    this.drop();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
