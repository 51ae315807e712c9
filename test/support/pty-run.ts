// Runs a command on a pseudo-terminal, as a shell would: the command leads
// a new session whose controlling terminal is the pty, so a ^C typed into it
// is turned by the terminal's line discipline into SIGINT for the whole
// foreground process group (the command and every child it did not move
// elsewhere), not a kill aimed at one pid. Node cannot make a controlling
// terminal, so a small Python program (its pty module) holds the master end:
// what the command writes comes out on its stdout, and bytes written to its
// stdin are typed into the terminal.
import { spawn, type ChildProcess } from "node:child_process";

const PTY_HOLDER = String.raw`
import fcntl, os, pty, select, struct, sys, termios
cols, rows = int(sys.argv[1]), int(sys.argv[2])
pid, master = pty.fork()
if pid == 0:
    os.execvp(sys.argv[3], sys.argv[3:])
fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
stdin_open = True
while True:
    fds = [master] + ([0] if stdin_open else [])
    ready, _, _ = select.select(fds, [], [])
    if 0 in ready:
        data = os.read(0, 1024)
        if data:
            os.write(master, data)
        else:
            stdin_open = False
    if master in ready:
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b""
        if not data:
            break
        os.write(1, data)
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
sys.exit(128 - code if code < 0 else code)
`;

export interface PtyRun {
  child: ChildProcess;
  /** Everything the command wrote to its terminal so far (stdout and stderr together, with escape sequences). */
  output(): string;
  /** Types text into the terminal; "\x03" is ^C. */
  type(text: string): void;
  /** The command's exit status (128 + N when signal N killed it). */
  exited: Promise<number>;
}

export interface PtyOptions {
  columns?: number;
  rows?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function runInPty(argv: string[], o: PtyOptions = {}): PtyRun {
  const child = spawn("python3", ["-c", PTY_HOLDER, String(o.columns ?? 80), String(o.rows ?? 24), ...argv], {
    stdio: ["pipe", "pipe", "inherit"],
    env: o.env ?? process.env,
    cwd: o.cwd,
  });
  let out = "";
  child.stdout!.on("data", (b: Buffer) => (out += b.toString("utf8")));
  const exited = new Promise<number>((resolve) => child.on("exit", (code) => resolve(code ?? -1)));
  return {
    child,
    output: () => out,
    type: (text) => void child.stdin!.write(text),
    exited,
  };
}

/** The text a terminal shows for output: escape sequences and carriage returns removed. */
export function visibleText(s: string): string {
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "");
}
