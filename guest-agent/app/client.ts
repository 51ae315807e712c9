// The library a guest program uses to answer its own device faults: connect
// to the agent's app socket, register the PASID the program's device uses,
// and answer each page request with "success", "invalid" or "failure".
//
//   const agent = await AgentClient.connect();
//   agent.onPageRequest(async (fault) => ((await ensureMapped(fault.pages)) ? "success" : "invalid"));
//   await agent.register(pasid);
import { createConnection, Socket } from "node:net";
import { AgentMessage, ClientMessage, DEFAULT_APP_SOCKET, encodeLine, FaultPage, LineReader } from "./protocol.js";

export type { FaultPage } from "./protocol.js";
export type FaultAnswer = "success" | "invalid" | "failure";

export interface PageFault {
  endpoint: number;
  pasid: number;
  pages: FaultPage[];
  /** Microseconds the relay gives the whole group; a later answer is not used. */
  budgetUs: number;
  /** Aborted when the agent no longer wants the answer (cancelled, overran, session ended). */
  signal: AbortSignal;
}

export type PageRequestHandler = (fault: PageFault) => FaultAnswer | Promise<FaultAnswer>;

const ANSWERS = ["success", "invalid", "failure"];

export class AgentClient {
  private handler: PageRequestHandler | null = null;
  private nextSeq = 1;
  private readonly replies = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private readonly faults = new Map<number, AbortController>();
  /** Resolves when the connection to the agent has closed. */
  readonly closed: Promise<void>;

  private constructor(private readonly socket: Socket) {
    const reader = new LineReader(
      (line) => {
        try {
          this.onMessage(JSON.parse(line) as AgentMessage);
        } catch (err) {
          socket.destroy(new Error(`the agent sent a line that is not JSON: ${(err as Error).message}`));
        }
      },
      () => socket.destroy(new Error("the agent sent a line longer than 64 KiB")),
    );
    socket.on("data", (chunk: Buffer) => reader.push(chunk));
    this.closed = new Promise((resolve) => {
      socket.on("close", () => {
        for (const r of this.replies.values()) r.reject(new Error("the agent closed the connection before answering"));
        this.replies.clear();
        for (const f of this.faults.values()) f.abort(new Error("the agent closed the connection"));
        this.faults.clear();
        resolve();
      });
    });
    socket.on("error", () => undefined);
  }

  static connect(path = DEFAULT_APP_SOCKET): Promise<AgentClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path });
      socket.once("error", (err) => reject(new Error(`cannot reach iopf-agent at ${path}: ${err.message}; is the agent running with this appSocket?`, { cause: err })));
      socket.once("connect", () => resolve(new AgentClient(socket)));
    });
  }

  /** Sets the function that answers this program's faults; set it before register(). */
  onPageRequest(handler: PageRequestHandler): void {
    this.handler = handler;
  }

  /** Claims the PASID (on one endpoint, or all) so that its faults come to onPageRequest. */
  register(pasid: number, endpoint?: number): Promise<void> {
    return this.request({ op: "register", seq: 0, pasid, ...(endpoint === undefined ? {} : { endpoint }), mode: "app" });
  }

  /** Binds the PASID to a process (this one by default) whose pages the agent faults in itself (procmem). */
  registerProcess(pasid: number, pid = process.pid, endpoint?: number): Promise<void> {
    return this.request({ op: "register", seq: 0, pasid, ...(endpoint === undefined ? {} : { endpoint }), mode: "procmem", pid });
  }

  close(): void {
    this.socket.end();
  }

  private request(msg: ClientMessage & { op: "register" }): Promise<void> {
    const seq = this.nextSeq++;
    return new Promise((resolve, reject) => {
      this.replies.set(seq, { resolve, reject });
      this.socket.write(encodeLine({ ...msg, seq }));
    });
  }

  private onMessage(msg: AgentMessage): void {
    switch (msg.op) {
      case "registered":
        this.takeReply(msg.seq)?.resolve();
        return;
      case "error":
        if (msg.seq !== undefined) this.takeReply(msg.seq)?.reject(new Error(`iopf-agent refused: ${msg.message}`));
        return;
      case "cancel":
        this.faults.get(msg.id)?.abort(new Error(msg.reason));
        this.faults.delete(msg.id);
        return;
      case "fault":
        void this.answer(msg);
        return;
    }
  }

  private takeReply(seq: number): { resolve: () => void; reject: (err: Error) => void } | undefined {
    const r = this.replies.get(seq);
    this.replies.delete(seq);
    return r;
  }

  private async answer(msg: Extract<AgentMessage, { op: "fault" }>): Promise<void> {
    const abort = new AbortController();
    this.faults.set(msg.id, abort);
    let code: FaultAnswer;
    try {
      if (!this.handler) throw new Error("no onPageRequest handler");
      code = await this.handler({ endpoint: msg.endpoint, pasid: msg.pasid, pages: msg.pages, budgetUs: msg.budgetUs, signal: abort.signal });
      if (!ANSWERS.includes(code)) code = "invalid";
    } catch {
      // The agent would answer INVALID for a failed handler anyway; say so at once.
      code = "invalid";
    }
    if (!this.faults.delete(msg.id)) return;
    this.socket.write(encodeLine({ op: "answer", id: msg.id, code }));
  }
}
