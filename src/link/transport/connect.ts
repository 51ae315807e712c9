// From a transport address to a stream or a listener: the one entry point
// the CLIs need. (The guest agent, bundled without node_modules, may import
// chardev.ts alone to leave ws out of its bundle.)
import { formatAddress, parseAddress, type TransportAddress } from "./address.js";
import type { ByteStream, StreamListener } from "./byte-stream.js";
import { openCharDevice } from "./chardev.js";
import type { NetworkListenOptions } from "./listen-policy.js";
import { connectTcp, TcpListener } from "./tcp.js";
import { TransportError } from "./transport-error.js";
import { connectUnix, UnixListener } from "./unix.js";
import { connectWebSocket, WebSocketListener } from "./websocket.js";

export interface ListenOptions extends NetworkListenOptions {
  /** A Unix socket file's mode: 0600 (default) or 0660. */
  socketMode?: number;
}

function toAddress(address: string | TransportAddress): TransportAddress {
  return typeof address === "string" ? parseAddress(address) : address;
}

/** Connects to a listening peer, or opens a character device. */
export async function connect(address: string | TransportAddress): Promise<ByteStream> {
  const a = toAddress(address);
  switch (a.kind) {
    case "unix":
      return connectUnix(a.path);
    case "tcp":
      return connectTcp(a.host, a.port);
    case "ws":
      return connectWebSocket(formatAddress(a));
    case "chardev":
      return openCharDevice(a.path);
  }
}

/** Listens for peers; tcp and ws refuse non-loopback hosts unless options.allowRemote. */
export async function listen(address: string | TransportAddress, options: ListenOptions = {}): Promise<StreamListener> {
  const a = toAddress(address);
  switch (a.kind) {
    case "unix":
      return UnixListener.listen(a.path, options.socketMode);
    case "tcp":
      return TcpListener.listen(a.host, a.port, options);
    case "ws":
      return WebSocketListener.listen(a.host, a.port, a.path, options);
    case "chardev":
      throw new TransportError(
        `${formatAddress(a)}: a character device is opened, not listened on; use connect() with it ` +
          `(the guest agent's side), and listen on unix:, tcp: or ws:// on the host.`,
      );
  }
}
