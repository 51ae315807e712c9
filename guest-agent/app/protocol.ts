// The local protocol between the agent and guest programs on the app socket:
// one JSON object per line, UTF-8, "\n"-terminated (docs/guest-agent.md has
// the full description). JSON lines keep a client in any language to a JSON
// parser and a line reader.

export const DEFAULT_APP_SOCKET = "/run/iopf-agent.sock";

/** A line longer than this ends the connection: memory stays bounded whatever a client sends. */
export const MAX_LINE_BYTES = 64 * 1024;

export type Mode = "app" | "procmem";

/** Client to agent. */
export type ClientMessage =
  | { op: "register"; seq: number; pasid: number; endpoint?: number; mode?: Mode; pid?: number }
  | { op: "answer"; id: number; code: "success" | "invalid" | "failure" };

export interface FaultPage {
  address: number;
  /** Bits: 1 read, 2 write, 4 exec, 8 privileged. */
  perm: number;
}

/** Agent to client. */
export type AgentMessage =
  | { op: "registered"; seq: number }
  | { op: "error"; seq?: number; message: string }
  | { op: "fault"; id: number; endpoint: number; pasid: number; pages: FaultPage[]; budgetUs: number }
  | { op: "cancel"; id: number; reason: string };

/** Splits a byte stream into lines; reports an over-long line once and stops. */
export class LineReader {
  private parts: Buffer[] = [];
  private size = 0;
  private failed = false;

  constructor(
    private readonly line: (text: string) => void,
    private readonly tooLong: (bytes: number) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1 && !this.failed; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      if (this.size + piece.length > MAX_LINE_BYTES) return this.fail(this.size + piece.length);
      const text = this.parts.length === 0 ? piece.toString("utf8") : Buffer.concat([...this.parts, piece]).toString("utf8");
      this.parts = [];
      this.size = 0;
      start = nl + 1;
      if (text.length > 0) this.line(text);
    }
    if (this.failed || start === chunk.length) return;
    this.parts.push(chunk.subarray(start));
    this.size += chunk.length - start;
    if (this.size > MAX_LINE_BYTES) this.fail(this.size);
  }

  private fail(bytes: number): void {
    this.failed = true;
    this.parts = [];
    this.tooLong(bytes);
  }
}

export function encodeLine(msg: AgentMessage | ClientMessage): string {
  return JSON.stringify(msg) + "\n";
}
