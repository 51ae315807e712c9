// Runs the host tools the VM layer needs (make, tar, cpio, dpkg) with their
// output kept for the error message instead of interleaved with test output.
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Appends stdout and stderr here (kept after the run for diagnosis). */
  logFile?: string;
  /** Called with each output line, e.g. to report progress. */
  onLine?: (line: string) => void;
  input?: Buffer | string;
}

const TAIL_LINES = 40;

/** Runs cmd to completion; resolves its stdout, rejects with the output tail on a non-zero exit. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    const log = opts.logFile ? createWriteStream(opts.logFile, { flags: "a" }) : undefined;
    const stdout: Buffer[] = [];
    const tail: string[] = [];
    let partial = "";
    const onData = (chunk: Buffer, keep: boolean) => {
      if (keep) stdout.push(chunk);
      log?.write(chunk);
      const lines = (partial + chunk.toString("utf8")).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
        opts.onLine?.(line);
      }
    };
    child.stdout.on("data", (c: Buffer) => onData(c, true));
    child.stderr.on("data", (c: Buffer) => onData(c, false));
    child.on("error", (e) => {
      log?.end();
      reject(new Error(`could not start ${cmd}: ${e.message}; is it installed and on PATH?`));
    });
    child.on("close", (code, signal) => {
      log?.end();
      if (code === 0) return resolve(Buffer.concat(stdout).toString("utf8"));
      const where = opts.logFile ? `\nfull output: ${opts.logFile}` : "";
      reject(new Error(
        `${cmd} ${args.join(" ")} (in ${opts.cwd ?? process.cwd()}) exited with ` +
        `${signal ?? code}, expected 0; last output:\n${[...tail, partial].join("\n")}${where}`,
      ));
    });
    child.stdin.end(opts.input ?? "");
  });
}
