// A child process of the benchmark: spawned with inherited fds, its stderr
// kept (the last lines) to explain a failure, a wait for a line it prints,
// and a stop that signals and waits for exit.
import { ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";

const KEPT_LINES = 40;

export class Child {
  readonly process: ChildProcess;
  readonly exited: Promise<number | null>;
  private readonly tail: string[] = [];
  private readonly watchers: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  private readonly followers: ((line: string) => void)[] = [];

  constructor(readonly name: string, command: string, args: string[], fds: number[] = []) {
    this.process = spawn(command, args, { stdio: ["pipe", "pipe", "pipe", ...fds] });
    this.exited = new Promise((resolve) => this.process.once("exit", (code) => resolve(code)));
    for (const stream of [this.process.stdout!, this.process.stderr!]) {
      createInterface({ input: stream }).on("line", (line) => this.onLine(line));
    }
    // A child that died before reading its stdin must not take the benchmark down with EPIPE.
    this.process.stdin!.on("error", () => undefined);
  }

  get pid(): number {
    if (this.process.pid === undefined) throw new Error(`${this.name}: not running (spawn failed)`);
    return this.process.pid;
  }

  private onLine(line: string): void {
    for (const f of this.followers) f(line);
    this.tail.push(line);
    if (this.tail.length > KEPT_LINES) this.tail.shift();
    for (const w of this.watchers.splice(0)) {
      if (w.pattern.test(line)) w.resolve(line);
      else this.watchers.push(w);
    }
  }

  /** Resolves with the first line (stdout or stderr) matching, failing after timeoutMs or when the child exits. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const fail = (why: string): void => reject(new Error(`${this.name}: expected a line matching ${pattern}, but ${why}; its last output:\n${this.output()}`));
      const timer = setTimeout(() => fail(`none came within ${timeoutMs} ms`), timeoutMs);
      void this.exited.then((code) => fail(`it exited with code ${code}`));
      this.watchers.push({ pattern, resolve: (line) => {
        clearTimeout(timer);
        resolve(line);
      } });
    });
  }

  /** Calls fn with every later line (stdout or stderr). */
  follow(fn: (line: string) => void): void {
    this.followers.push(fn);
  }

  send(line: string): void {
    this.process.stdin!.write(line + "\n");
  }

  output(): string {
    return this.tail.join("\n");
  }

  /** SIGTERM, then SIGKILL if it has not exited after graceMs; resolves with the exit code. */
  async stop(graceMs = 10_000): Promise<number | null> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return this.process.exitCode;
    this.process.kill("SIGTERM");
    const timer = setTimeout(() => this.process.kill("SIGKILL"), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
