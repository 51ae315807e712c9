// Where the relay meets its agent: listening (QEMU's chardev connects to us,
// e.g. `-chardev socket,path=...,reconnect=1`), connecting to a QEMU
// chardev server (reconnecting with backoff when it goes away), or an
// already-connected socket inherited as a file descriptor (--fd).
import { fstatSync, type Stats } from "node:fs";
import { Socket } from "node:net";
import { Backoff } from "../link/backoff.js";
import { connect, listen } from "../link/transport/connect.js";
import { ByteStream, StreamListener } from "../link/transport/byte-stream.js";
import { SocketStream } from "../link/transport/socket-stream.js";
import { TransportError } from "../link/transport/transport-error.js";
import { Logger } from "./log.js";
import { StartupError } from "./startup-error.js";

export type LinkEndpointSpec = { listen: string; socketMode?: number } | { connect: string } | { fd: number };

export interface LinkEndpoint {
  readonly description: string;
  close(): Promise<void>;
}

export async function openLinkEndpoint(spec: LinkEndpointSpec, attach: (stream: ByteStream) => void, log: Logger): Promise<LinkEndpoint> {
  if ("listen" in spec) {
    const listener: StreamListener = await listen(spec.listen, spec.socketMode === undefined ? {} : { socketMode: spec.socketMode }).catch((err: Error) => {
      // Where the relay was told to listen is the operator's to fix: one line, not a stack.
      throw err instanceof TransportError ? new StartupError(err.message, { cause: err }) : err;
    });
    listener.on("connection", (stream) => {
      log("agent connection accepted", { on: listener.description, from: stream.description });
      attach(stream);
    });
    listener.on("error", (err) => log.level("error", "link listener failed", { on: listener.description, error: err.message }));
    return { description: listener.description, close: () => listener.close() };
  }
  if ("fd" in spec) {
    checkInheritedSocket(spec.fd);
    const socket = new Socket({ fd: spec.fd, readable: true, writable: true });
    const stream = new SocketStream(socket, `fd:${spec.fd}`);
    attach(stream);
    return { description: stream.description, close: async () => stream.end() };
  }
  return connectWithRetry(spec.connect, attach, log);
}

function kindOf(st: Stats): string {
  return st.isFIFO() ? "pipe" : st.isCharacterDevice() ? "character device" : st.isBlockDevice() ? "block device"
    : st.isDirectory() ? "directory" : st.isFile() ? "regular file" : "file of another kind";
}

/** --fd N must name a socket this process inherited; Node would throw an untold ERR_INVALID_FD_TYPE. */
function checkInheritedSocket(fd: number): void {
  let st: Stats;
  try {
    st = fstatSync(fd);
  } catch {
    throw new StartupError(`--fd ${fd}: not an open file descriptor of this process; the program that starts iopf-relay must pass the agent's connected socket as fd ${fd} (or use --socket-path)`);
  }
  if (!st.isSocket()) {
    throw new StartupError(`--fd ${fd}: expected a connected socket, got a ${kindOf(st)}; pass the agent's connected socket (QEMU's chardev, one end of a socketpair) as fd ${fd}`);
  }
}

/** A connection that lived this long resets the backoff; one closed sooner keeps it growing. */
const STABLE_CONNECTION_MS = 2000;

function connectWithRetry(address: string, attach: (stream: ByteStream) => void, log: Logger): LinkEndpoint {
  let closed = false;
  let current: ByteStream | null = null;
  const backoff = new Backoff(100, 5000);
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
        if (Date.now() - connectedAt >= STABLE_CONNECTION_MS) backoff.reset();
        if (!closed) schedule();
      });
      attach(stream);
    } catch (err) {
      schedule((err as Error).message);
    }
  };
  const schedule = (failure?: string): void => {
    const delayMs = Math.round(backoff.delay());
    if (failure !== undefined) log.level("warn", "cannot connect to the agent's channel; retrying", { to: address, error: failure, retryMs: delayMs });
    timer = setTimeout(() => void attempt(), delayMs);
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
