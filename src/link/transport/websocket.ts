// WebSocket transport: the guest link's byte stream carried in binary
// messages, for a relay reached through something that speaks only HTTP.
// Message boundaries mean nothing: the frames of the guest link are found by
// their own header, so a message may hold part of a frame or several.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import type { ByteStream, StreamListener } from "./byte-stream.js";
import { checkListenHost, type NetworkListenOptions } from "./listen-policy.js";
import { closeServer, ListenerEvents } from "./listener-events.js";
import { StreamEvents } from "./stream-events.js";
import { listenProblem, TransportError } from "./transport-error.js";

/** Largest message either side accepts; ws closes with 1009 above it. */
export const WS_MAX_PAYLOAD = 1024 * 1024;
/** Writes are cut into messages of at most this size, well under any peer's maxPayload. */
const MAX_MESSAGE = 64 * 1024;
/** write() returns false while more than this is queued in ws and its socket. */
const HIGH_WATER = 1024 * 1024;
/** "drain" fires once the queue is back under this after write() returned false. */
const LOW_WATER = 256 * 1024;

const wsOptions = { maxPayload: WS_MAX_PAYLOAD, perMessageDeflate: false } as const;

export function wsName(host: string, port: number, path: string): string {
  return host.includes(":") ? `ws://[${host}]:${port}${path}` : `ws://${host}:${port}${path}`;
}

export class WebSocketStream extends StreamEvents implements ByteStream {
  private failure: Error | undefined;
  private needDrain = false;

  constructor(
    private readonly ws: WebSocket,
    readonly description: string,
  ) {
    super();
    // Messages that came in the same packet as the handshake reply are
    // parsed on nextTick, before the continuation of the promise that hands
    // this stream over can attach listeners: hold them back for one turn.
    ws.pause();
    setImmediate(() => ws.resume());
    ws.on("message", (data: RawData, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on("error", (err) => {
      this.failure ??= new Error(`${description}: ${err.message}`, { cause: err });
    });
    ws.on("close", (code: number, reason: Buffer) => this.emitClose(this.failure ?? closeError(description, code, reason)));
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (!isBinary) {
      // A text message means the peer is not speaking this protocol at all
      // (a browser console, a misconfigured proxy): fail fast and say so.
      const err = new Error(
        `${this.description}: received a text message; the guest link carries its bytes in binary ` +
          `messages only. Check that the peer sends binary frames.`,
      );
      this.ws.close(1003, "binary messages only");
      this.emitClose(err);
      return;
    }
    // binaryType is "nodebuffer", so a binary message is one Buffer.
    this.emit("data", data as Buffer);
  }

  write(chunk: Uint8Array): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    for (let at = 0; at < chunk.length; at += MAX_MESSAGE) {
      this.ws.send(chunk.subarray(at, at + MAX_MESSAGE), { binary: true }, () => this.onSent());
    }
    if (this.ws.bufferedAmount > HIGH_WATER) this.needDrain = true;
    return !this.needDrain;
  }

  /** ws has no "drain" event; each send's callback runs as its bytes reach the socket. */
  private onSent(): void {
    if (this.needDrain && this.ws.bufferedAmount <= LOW_WATER) {
      this.needDrain = false;
      this.emit("drain");
    }
  }

  end(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
  }

  destroy(err?: Error): void {
    this.failure ??= err;
    this.ws.terminate();
  }
}

function closeError(description: string, code: number, reason: Buffer): Error | undefined {
  // 1000 normal, 1001 going away, 1005 closed without a status: orderly ends.
  if (code === 1000 || code === 1001 || code === 1005) return undefined;
  if (code === 1006) return new Error(`${description}: the connection was lost without a WebSocket close (1006)`);
  const why = reason.length > 0 ? `: ${reason.toString("utf8")}` : "";
  return new Error(`${description}: the peer closed with code ${code}${why}`);
}

export function connectWebSocket(url: string): Promise<WebSocketStream> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, wsOptions);
    ws.once("error", (err) => {
      reject(new Error(`${url}: cannot connect: ${err.message}; is a guest-link WebSocket server listening there?`, { cause: err }));
    });
    ws.once("open", () => {
      ws.removeAllListeners("error");
      resolve(new WebSocketStream(ws, url));
    });
  });
}

export class WebSocketListener extends ListenerEvents implements StreamListener {
  /** The bound address; port is the real one when 0 was asked for. */
  readonly address: { host: string; port: number; path: string };
  readonly description: string;

  private constructor(
    private readonly http: Server,
    private readonly wss: WebSocketServer,
    path: string,
  ) {
    super();
    const info = http.address() as AddressInfo;
    this.address = { host: info.address, port: info.port, path };
    this.description = wsName(info.address, info.port, path);
    http.on("error", (err) => this.emitError(err));
    wss.on("error", (err) => this.emitError(err));
    wss.on("connection", (ws: WebSocket, req: IncomingMessage) => {
      const peer = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? 0}`;
      this.emitConnection(new WebSocketStream(ws, `${this.description} (accepted from ${peer})`));
    });
  }

  static async listen(host: string, port: number, path: string, options: NetworkListenOptions = {}): Promise<WebSocketListener> {
    checkListenHost("ws", host, options);
    const http = createServer((_req, res) => {
      res.writeHead(426, { "content-type": "text/plain" });
      res.end(`This is an iopf-relay guest link: connect with a WebSocket to ${path}\n`);
    });
    // ws answers an upgrade for any other path with 400.
    const wss = new WebSocketServer({ ...wsOptions, server: http, path });
    await new Promise<void>((resolve, reject) => {
      http.once("error", (err) => {
        reject(new TransportError(`${wsName(host, port, path)}: cannot listen: ${listenProblem({ kind: "tcp", host, port }, err)}`, { cause: err }));
      });
      http.listen({ host, port }, () => {
        http.removeAllListeners("error");
        resolve();
      });
    });
    return new WebSocketListener(http, wss, path);
  }

  /** Stops accepting and frees the port; accepted streams stay open. */
  close(): Promise<void> {
    // With an external HTTP server, wss.close() only stops handling upgrades.
    this.wss.close();
    return closeServer(this.http);
  }
}
