// The end-to-end tests' control channel: the host test asks a guest driver
// to do things in the guest (start or signal the agent, start the test
// program, read its pagemap) over a second virtio-serial port, one JSON
// object a line: {"id","cmd","args"} in, {"id","ok","result"|"error"} out.
// It is a port of its own so that it never mixes with the guest link. A
// scenario inside a guest drives a guest program (the VMM stand-in) the
// same way over the program's stdin and stdout.
import { connect, type Socket } from "node:net";
import type { Readable, Writable } from "node:stream";

export const CONTROL_PORT_NAME = "org.iopf-relay.e2e-control";
/** The guest driver prints this on the console once it serves the control port. */
export const GUEST_READY_LINE = "E2E-GUEST-READY";

interface Request {
  id: number;
  cmd: string;
  args: unknown;
}

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/** Calls onLine with each complete line of the chunks pushed into the returned function. */
function lineSplitter(onLine: (line: string) => void): (chunk: Buffer) => void {
  let partial = "";
  return (chunk) => {
    const parts = (partial + chunk.toString("utf8")).split("\n");
    partial = parts.pop() ?? "";
    for (const p of parts) if (p.trim()) onLine(p);
  };
}

export type CommandTable<C> = { [K in keyof C]: C[K] extends { args: infer A; result: infer R } ? (args: A) => Promise<R> : never };

/** Where the served side reads requests and writes replies: a port's stream, or a program's stdin and stdout. */
export interface ServedEnds {
  input: { on(event: "data", listener: (chunk: Buffer) => void): unknown };
  output: { write(chunk: Uint8Array): unknown };
}

/** Served side: answers each request line with its command's result (or its error message). */
export function serveControl<C>({ input, output }: ServedEnds, commands: CommandTable<C>): void {
  input.on("data", lineSplitter((line) => {
    const req = JSON.parse(line) as Request;
    const run = (commands as Record<string, ((args: unknown) => Promise<unknown>) | undefined>)[req.cmd];
    const reply = (r: Omit<Reply, "id">): void => void output.write(Buffer.from(JSON.stringify({ id: req.id, ...r }) + "\n"));
    if (!run) return reply({ ok: false, error: `unknown command "${req.cmd}"; expected one of ${Object.keys(commands).join(", ")}` });
    run(req.args).then(
      (result) => reply({ ok: true, result }),
      (err: Error) => reply({ ok: false, error: err.stack ?? err.message }),
    );
  }));
}

/**
 * Calling side: typed calls into the guest driver through QEMU's socket for
 * the control port (connect), or into a program through its stdio (over).
 */
export class ControlClient<C extends Record<string, { args: unknown; result: unknown }>> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();

  /** served: who answers, for errors ("the guest driver"); gone: what it means when the input closes first. */
  private constructor(private readonly input: Readable, private readonly output: Writable, private readonly served: string, gone: string) {
    input.on("data", lineSplitter((line) => {
      const reply = JSON.parse(line) as Reply;
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.ok) p?.resolve(reply.result);
      else p?.reject(new Error(`${served} failed: ${reply.error}`));
    }));
    input.on("close", () => {
      for (const p of this.pending.values()) p.reject(new Error(`${gone} before ${served} answered`));
      this.pending.clear();
    });
    input.on("error", () => undefined);
    output.on("error", () => undefined);
  }

  /** Calls a program through its stdout (replies) and stdin (requests). */
  static over<C extends Record<string, { args: unknown; result: unknown }>>(input: Readable, output: Writable, served: string): ControlClient<C> {
    return new ControlClient<C>(input, output, served, `the output of ${served} closed (it exited?)`);
  }

  /** Connects to QEMU's chardev server socket, retrying while QEMU has not created it yet. */
  static async connect<C extends Record<string, { args: unknown; result: unknown }>>(path: string, timeoutMs = 30_000): Promise<ControlClient<C>> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path, () => resolve(s));
          s.once("error", reject);
        });
        return new ControlClient<C>(socket, socket, "the guest driver", "the control port's socket closed (the VM ended?)");
      } catch (err) {
        if (Date.now() > until) throw new Error(`cannot connect to the control port's socket ${path} within ${timeoutMs} ms: ${(err as Error).message}; did QEMU start?`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  call<K extends keyof C & string>(cmd: K, args: C[K]["args"], timeoutMs = 30_000): Promise<C[K]["result"]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.served} did not answer "${cmd}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (r) => { clearTimeout(timer); resolve(r as C[K]["result"]); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.output.write(JSON.stringify({ id, cmd, args } satisfies Request) + "\n");
    });
  }

  close(): void {
    this.input.destroy();
    this.output.destroy();
  }
}
