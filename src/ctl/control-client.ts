// iopfctl's side of the control server: JSON over HTTP and the event stream
// over a WebSocket, on tcp:HOST:PORT or unix:PATH. It sends no Origin header
// (it is not a browser), which is what the server's Origin check lets in.
import { request } from "node:http";
import { WebSocket } from "ws";
import { ControlAddress, formatControlAddress, parseControlAddress } from "../relay/control/control-address.js";
import type { RelayStatus } from "../relay/control/status.js";
import type { EventFilter, StreamMessage } from "../relay/control/wire-event.js";

export class CtlError extends Error {
  override readonly name = "CtlError";
}

export class ControlClient {
  readonly address: ControlAddress;
  readonly text: string;

  constructor(address: string) {
    this.address = parseControlAddress(address);
    this.text = formatControlAddress(this.address);
  }

  /** The error for a relay that is not there, or a socket iopfctl may not open. */
  unreachable(err: NodeJS.ErrnoException): CtlError {
    if (err.code === "EACCES") {
      return new CtlError(`cannot open the control socket ${this.text}: permission denied; the socket is 0600, owned by the relay's user: run iopfctl as that user (or with sudo -u)`);
    }
    if (err.code === "ECONNREFUSED" || err.code === "ENOENT" || err.code === "ECONNRESET") {
      return new CtlError(`no relay control server at ${this.text} (${err.code}): start iopf-relay with --control ${this.text}, or point iopfctl at the relay's address with --control ADDR`);
    }
    return new CtlError(`control server at ${this.text}: ${err.message}`);
  }

  private call(method: string, path: string, body?: object): Promise<{ status: number; text: string }> {
    const where = this.address.kind === "unix" ? { socketPath: this.address.path } : { host: this.address.host, port: this.address.port };
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request({
        ...where, method, path,
        headers: payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
        timeout: 5000,
      }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        res.on("error", (err) => reject(this.unreachable(err)));
      });
      req.on("timeout", () => req.destroy(Object.assign(new CtlError("no answer within 5 s"), { code: "ETIMEDOUT" })));
      req.on("error", (err) => reject(this.unreachable(err)));
      req.end(payload);
    });
  }

  private async json<T>(method: string, path: string, body?: object): Promise<T> {
    const { status, text } = await this.call(method, path, body);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new CtlError(`${method} ${path} on ${this.text}: expected JSON from an iopf-relay control server, got HTTP ${status}: ${text.slice(0, 120)}`);
    }
    if (status !== 200) throw new CtlError(`${method} ${path} on ${this.text}: HTTP ${status}: ${(parsed as { error?: string }).error ?? text}`);
    return parsed as T;
  }

  status(): Promise<RelayStatus> {
    return this.json<RelayStatus>("GET", "/api/status");
  }

  inject(body: object): Promise<{ raised: number; target: string }> {
    return this.json("POST", "/api/inject", body);
  }

  /**
   * Opens the event stream with a filter; calls onMessage for every message.
   * Resolves when the stream is open, with a function that closes it.
   */
  events(filter: EventFilter, onMessage: (m: StreamMessage) => void, onClose: (code: number, reason: string) => void): Promise<() => void> {
    const url = this.address.kind === "unix" ? `ws+unix:${this.address.path}:/api/events`
      : `ws://${this.address.host.includes(":") ? `[${this.address.host}]` : this.address.host}:${this.address.port}/api/events`;
    const ws = new WebSocket(url, { perMessageDeflate: false });
    return new Promise((resolve, reject) => {
      ws.once("error", (err: NodeJS.ErrnoException) => reject(this.unreachable(err)));
      ws.once("unexpected-response", (_req, res) => {
        reject(new CtlError(`${this.text} refused the event stream: HTTP ${res.statusCode}; is it an iopf-relay control server?`));
        ws.terminate();
      });
      ws.once("open", () => {
        ws.removeAllListeners("error");
        ws.on("error", () => undefined);
        ws.send(JSON.stringify({ type: "subscribe", ...filter }));
        ws.on("message", (data) => onMessage(JSON.parse(data.toString()) as StreamMessage));
        ws.on("close", (code, reason) => onClose(code, reason.toString()));
        resolve(() => ws.close());
      });
    });
  }
}
