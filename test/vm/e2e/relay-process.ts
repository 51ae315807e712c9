// Guest side (VM-A of e2e-two-vms.test.ts): the iopf-relay command run as a
// child with a fault fd inherited as its fd 3, as a VMM would start it (or
// with none, when fault fds come by its handoff socket). Its
// JSON log lines are kept (a scenario waits on them: "agent session up",
// the keeper's "relay started" with the child's pid, the "stopped" line with
// the relay's counters) and echoed to the console with a prefix.
import { spawn, type ChildProcess } from "node:child_process";
import { echoLines } from "./guest-processes.js";

const RELAY_CLI = "/opt/iopf-relay/build/src/cli/iopf-relay.js";
/** The fault fd's number in the child: 0-2 are stdio. */
export const CHILD_FAULT_FD = 3;

export type LogRecord = Record<string, unknown> & { msg: string };

export class RelayProcess {
  readonly records: LogRecord[] = [];
  /** On "close", not "exit": the log's last lines (the "stopped" counters) may come after "exit". */
  readonly exited: Promise<string>;
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly child: ChildProcess, label: string) {
    this.exited = new Promise((resolve) => child.once("close", (code, signal) => resolve(signal ? `signal ${signal}` : `code ${code}`)));
    const onLine = (line: string): void => {
      let record: LogRecord;
      try {
        record = JSON.parse(line) as LogRecord;
      } catch {
        record = { msg: line };
      }
      this.records.push(record);
      for (const w of this.waiters) w();
    };
    echoLines(child.stdout!, label, onLine);
    echoLines(child.stderr!, label, onLine);
  }

  /** Starts `iopf-relay args...` with faultFd, if any, as its fd 3 (pass --fault-fd 3). */
  static start(args: string[], faultFd: number | null, label: string): RelayProcess {
    const child = spawn(process.execPath, [RELAY_CLI, "--log-format", "json", ...args], { stdio: ["ignore", "pipe", "pipe", ...(faultFd === null ? [] : [faultFd])] });
    return new RelayProcess(child, label);
  }

  /** The process started: the relay, or under --keeper the keeper. */
  get pid(): number {
    return this.child.pid!;
  }

  /** The first record from index `from` on that matches; waits for it, or fails naming what was awaited. */
  waitFor(what: string, match: (r: LogRecord) => boolean, timeoutMs: number, from = 0): Promise<LogRecord> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.waiters.delete(check);
        outcome();
      };
      const check = (): void => {
        const found = this.records.slice(from).find(match);
        if (found) settle(() => resolve(found));
      };
      const timer = setTimeout(() => settle(() => reject(new Error(`expected the relay to log ${what} within ${timeoutMs} ms; its log is on the console`))), timeoutMs);
      this.waiters.add(check);
      void this.exited.then((how) => {
        check();
        settle(() => reject(new Error(`expected the relay to log ${what}, but it exited (${how}); its log is on the console`)));
      });
      check();
    });
  }

  /** SIGTERM (the relay answers what it holds and logs "stopped" with its counters); resolves with that record. */
  async stop(timeoutMs = 30_000): Promise<LogRecord> {
    const from = this.records.length;
    this.child.kill("SIGTERM");
    const stopped = await this.waitFor(`"stopped" after SIGTERM`, (r) => r.msg === "stopped", timeoutMs, from);
    await this.exited;
    return stopped;
  }
}
