// Where the relay meets its agent: listening (QEMU's chardev connects to us,
// e.g. `-chardev socket,path=...,reconnect=1`), connecting to a QEMU
// chardev server (reconnecting with backoff when it goes away), or an
// already-connected socket inherited as a file descriptor (--fd).
import { Socket } from "node:net";
import { connect, listen } from "../link/transport/connect.js";
import { ByteStream, StreamListener } from "../link/transport/byte-stream.js";
import { SocketStream } from "../link/transport/socket-stream.js";
import { Logger } from "./log.js";

export type LinkEndpointSpec = { listen: string; socketMode?: number } | { connect: string } | { fd: number };

export interface LinkEndpoint {
  readonly description: string;
  close(): Promise<void>;
}

export async function openLinkEndpoint(spec: LinkEndpointSpec, attach: (stream: ByteStream) => void, log: Logger): Promise<LinkEndpoint> {
  if ("listen" in spec) {
    const listener: StreamListener = await listen(spec.listen, spec.socketMode === undefined ? {} : { socketMode: spec.socketMode });
    listener.on("connection", (stream) => {
      log("agent connection accepted", { on: listener.description, from: stream.description });
      attach(stream);
    });
    listener.on("error", (err) => log.level("error", "link listener failed", { on: listener.description, error: err.message }));
    return { description: listener.description, close: () => listener.close() };
  }
  if ("fd" in spec) {
    const socket = new Socket({ fd: spec.fd, readable: true, writable: true });
    const stream = new SocketStream(socket, `fd:${spec.fd}`);
    attach(stream);
    return { description: stream.description, close: async () => stream.end() };
  }
  return connectWithRetry(spec.connect, attach, log);
}

/** A connection that lived this long resets the backoff; one closed sooner keeps it growing. */
const STABLE_CONNECTION_MS = 2000;

function connectWithRetry(address: string, attach: (stream: ByteStream) => void, log: Logger): LinkEndpoint {
  let closed = false;
  let current: ByteStream | null = null;
  let delayMs = 100;
  let timer: NodeJS.Timeout | null = null;
  const attempt = async (): Promise<void> => {
    timer = null;
    if (closed) return;
    try {
      const stream = await connect(address);
      if (closed) {
        stream.destroy();
        return;
      }
      const connectedAt = Date.now();
      current = stream;
      log("connected to the agent's channel", { to: stream.description });
      stream.on("close", () => {
        current = null;
        // A peer that accepts and closes at once must not get a connect storm.
        if (Date.now() - connectedAt >= STABLE_CONNECTION_MS) delayMs = 100;
        if (!closed) schedule();
      });
      attach(stream);
    } catch (err) {
      log.level("warn", "cannot connect to the agent's channel; retrying", { to: address, error: (err as Error).message, retryMs: delayMs });
      schedule();
    }
  };
  const schedule = (): void => {
    timer = setTimeout(() => void attempt(), delayMs);
    delayMs = Math.min(delayMs * 2, 5000);
  };
  void attempt();
  return {
    description: address,
    close: async () => {
      closed = true;
      if (timer) clearTimeout(timer);
      current?.end();
    },
  };
}
