// One guest program on the app socket: it registers PASIDs and answers the
// faults the agent forwards to it. Faults still open when it disconnects are
// answered INVALID (by the guard, through the rejection here).
import { WirePageRequest } from "../../src/link/messages.js";
import type { ByteStream } from "../../src/link/transport/byte-stream.js";
import { codeOf, FaultContext, FaultHandler, isAnswerName, ResponseCode } from "../handlers/handler.js";
import { Logger } from "../log.js";
import { AgentMessage, encodeLine, LineReader, Mode } from "./protocol.js";
import { Registration } from "./registry.js";

export interface ConnectionEvents {
  /** Returns why the registration is refused, or null when it is accepted. */
  register(reg: Registration): string | null;
  closed(conn: AppConnection): void;
}

interface OpenFault {
  resolve: (code: ResponseCode) => void;
  reject: (err: Error) => void;
}

function isUint(v: unknown, max: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max;
}

export class AppConnection implements FaultHandler {
  private nextId = 1;
  private readonly open = new Map<number, OpenFault>();
  private closed = false;

  constructor(
    private readonly stream: ByteStream,
    private readonly events: ConnectionEvents,
    private readonly log: Logger,
  ) {
    const reader = new LineReader(
      (line) => this.onLine(line),
      (bytes) => this.drop(`a line of more than ${bytes} bytes without a newline; lines are limited to 64 KiB`),
    );
    stream.on("data", (chunk) => reader.push(chunk));
    stream.on("close", () => this.onClose());
  }

  handle(req: WirePageRequest, ctx: FaultContext): Promise<ResponseCode> {
    if (this.closed) return Promise.reject(new Error("the registered app has disconnected"));
    const id = this.nextId++;
    const pages = req.pages.map((p) => ({ address: p.address, perm: p.perm }));
    this.send({ op: "fault", id, endpoint: req.endpoint, pasid: req.pasid, pages, budgetUs: req.budgetUs });
    return new Promise((resolve, reject) => {
      this.open.set(id, { resolve, reject });
      ctx.signal.addEventListener(
        "abort",
        () => {
          // Answered, overran or cancelled: the app stops working on it, and a late answer is ignored.
          if (this.open.delete(id)) this.send({ op: "cancel", id, reason: String((ctx.signal.reason as Error)?.message ?? ctx.signal.reason) });
        },
        { once: true },
      );
    });
  }

  close(): void {
    this.stream.end();
  }

  private send(msg: AgentMessage): void {
    if (!this.closed) this.stream.write(Buffer.from(encodeLine(msg)));
  }

  /** Ends a client that broke the protocol, telling it why first. */
  private drop(why: string): void {
    this.log.warn("app: dropping a client that broke the protocol", { why });
    this.send({ op: "error", message: why });
    this.stream.end();
  }

  private onLine(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return this.drop(`expected one JSON object per line, got ${JSON.stringify(line.slice(0, 80))}`);
    }
    if (msg.op === "answer") return this.onAnswer(msg);
    if (msg.op === "register") return this.onRegister(msg);
    this.drop(`expected op "register" or "answer", got ${JSON.stringify(msg.op)}`);
  }

  private onAnswer(msg: Record<string, unknown>): void {
    if (!isUint(msg.id, Number.MAX_SAFE_INTEGER) || !isAnswerName(msg.code)) {
      return this.drop(`an answer needs an integer id and code "success", "invalid" or "failure", got ${JSON.stringify(msg)}`);
    }
    // An id no longer open was cancelled or overran: its answer is not wanted.
    const fault = this.open.get(msg.id);
    if (!fault) return;
    this.open.delete(msg.id);
    fault.resolve(codeOf(msg.code));
  }

  private onRegister(msg: Record<string, unknown>): void {
    const seq = isUint(msg.seq, Number.MAX_SAFE_INTEGER) ? msg.seq : 0;
    const refuse = (message: string): void => this.send({ op: "error", seq, message });
    const mode = (msg.mode ?? "app") as Mode;
    if (!isUint(msg.pasid, 0xf_ffff)) return refuse(`pasid must be an integer in 0..0xfffff (20 bits), got ${JSON.stringify(msg.pasid)}`);
    if (msg.endpoint !== undefined && !isUint(msg.endpoint, 0xffff_ffff)) return refuse(`endpoint must be a u32 or absent (any endpoint), got ${JSON.stringify(msg.endpoint)}`);
    if (mode !== "app" && mode !== "procmem") return refuse(`mode must be "app" or "procmem", got ${JSON.stringify(msg.mode)}`);
    if (mode === "procmem" && !(isUint(msg.pid, 0x3fff_ffff) && msg.pid > 0)) return refuse(`mode "procmem" needs the pid of the process to fault in, got ${JSON.stringify(msg.pid)}`);
    const reg: Registration = {
      endpoint: msg.endpoint === undefined ? null : (msg.endpoint as number),
      pasid: msg.pasid,
      mode,
      pid: mode === "procmem" ? (msg.pid as number) : null,
      client: this,
    };
    const refused = this.events.register(reg);
    if (refused !== null) return refuse(refused);
    this.log.info("app: registered", { pasid: reg.pasid, endpoint: reg.endpoint, mode, pid: reg.pid });
    this.send({ op: "registered", seq });
  }

  private onClose(): void {
    this.closed = true;
    const open = [...this.open.values()];
    this.open.clear();
    for (const f of open) f.reject(new Error("the registered app disconnected before answering"));
    this.events.closed(this);
  }
}
