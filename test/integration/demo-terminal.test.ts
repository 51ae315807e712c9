// `npm start` as a person runs it: package.json's start script run by sh on
// a pseudo-terminal (its setup and build steps left out: the test runs after
// a build), stopped with ^C typed into the terminal, so SIGINT goes to the
// whole foreground process group as in a shell (the shell, the emulator and
// agent children included), not to the demo's pid alone. Also its command
// line: a bad value is a usage error of one line, --help prints the usage.
import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DEMO_CLI, ROOT, run, tempDir, until } from "./control-harness.js";
import { runInPty, visibleText } from "../support/pty-run.js";

/** Pids of the processes whose environment holds marker: whatever the demo started and left behind. */
function marked(marker: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`, "latin1").split("\0").includes(`IOPF_DEMO_TEST=${marker}`)) pids.push(Number(name));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return pids;
}

test("^C in a terminal: every group read is answered, a summary, exit 0, nothing left behind", async (t) => {
  const tmp = tempDir(t, "demo-terminal-");
  const marker = `${process.pid}-${Date.now()}`;
  t.teardown(() => marked(marker).forEach((pid) => process.kill(pid, "SIGKILL")));
  // A shell that runs the demo as a child dies of the SIGINT before the demo has answered and summed up.
  const start = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: { start: string } }).scripts.start;
  const steps = start.split(" && ");
  t.regex(steps.at(-1) ?? "", /node build\/src\/cli\/demo\.js$/, "the start script's last step runs the demo");
  const script = [...steps.slice(0, -1).map(() => "true"), `${steps.at(-1)!.replace("node build/src/cli/demo.js", `${process.execPath} ${DEMO_CLI}`)} --rate 400`].join(" && ");
  const demo = runInPty(["sh", "-c", script], { cwd: ROOT, env: { ...process.env, TMPDIR: tmp, IOPF_DEMO_TEST: marker } });
  // Answers flowing: the view's answers line shows a non-zero total.
  await until(() => /^ *answers +[1-9]/m.test(visibleText(demo.output())) || demo.child.exitCode !== null, 50_000, "answers in the live view");
  demo.type("\x03");
  const code = await demo.exited;
  const text = visibleText(demo.output());
  t.is(code, 0, text.slice(-3000));
  t.notRegex(text, /^\s+at /m, "no stack trace");
  t.notRegex(text, /error|EPIPE/i, "no error on the way out");
  const summary = /stopped after \d+ s: (\d+) groups read, (\d+) answered\n {2}by guest \d+ success/.exec(text);
  t.truthy(summary, `a summary line:\n${text.slice(-1500)}`);
  t.true(Number(summary![1]) > 0);
  t.is(summary![2], summary![1], "every group read was answered");
  t.regex(text, /kernel emulator: delivered \d+.*contract violations 0/);
  const wide = text.split("\n").filter((l) => l.length > 80);
  t.deepEqual(wide, [], "every line fits the 80-column terminal (a wrapped line breaks the redraw)");
  t.regex(text, /INVALID answers are on purpose/);
  t.deepEqual(readdirSync(tmp).filter((n) => n.startsWith("iopf-demo-")), [], "the temporary directory is removed");
  t.deepEqual(marked(marker), [], "the emulator and the agent have exited");
});

test("a bad --seconds or --rate is a usage error of one line; --help prints the usage", async (t) => {
  for (const args of [["--seconds", "abc"], ["--seconds", "0"], ["--rate", "1.5"], ["--bogus"]]) {
    const p = run(t, DEMO_CLI, args);
    t.is(await p.exited, 2, `${args.join(" ")}: ${p.stderr()}`);
    const lines = p.stderr().trimEnd().split("\n");
    t.is(lines.length, 1, p.stderr());
    t.regex(lines[0]!, /^npm start: .*; run npm start -- --help for the options$/);
  }
  const help = run(t, DEMO_CLI, ["--help"]);
  t.is(await help.exited, 0);
  t.regex(help.stdout(), /^usage: npm start -- \[--rate N\] \[--seconds N\]/);
  t.is(help.stderr(), "");
});

test("piped: a header says what the columns are, then one line a second with the emulator's figures of that second", async (t) => {
  const tmp = tempDir(t, "demo-piped-");
  const p = run(t, DEMO_CLI, ["--rate", "400", "--seconds", "4"], { ...process.env, TMPDIR: tmp });
  t.is(await p.exited, 0, p.stderr());
  t.is(p.stderr(), "", "a clean stop warns about nothing");
  const lines = p.stdout().split("\n");
  t.regex(lines[0]!, /^iopf-relay demo: kernel emulator \(400 groups\/s, 8 devices\) -> relay -> agent$/);
  t.true(lines.some((l) => /^INVALID answers are on purpose: .* about a quarter of the guest's answers\.$/.test(l)), "what the INVALID answers are");
  t.true(lines.some((l) => /^One line a second: seconds \| session \|/.test(l)), "what each field of a line is");
  const data = lines.filter((l) => /^\d+ s \| /.test(l));
  t.true(data.length >= 2, p.stdout());
  for (const l of data) {
    const read = Number(/\| faults (\d+) /.exec(l)?.[1]);
    const delivered = Number(/\| emulator delivered (\d+),/.exec(l)?.[1]);
    // The emulator's count is read after the relay's: it has delivered at least what the relay read.
    t.true(delivered >= read, `the emulator's figures are as current as the relay's: ${l}`);
  }
  t.regex(p.stdout(), /stopped after \d+ s: (\d+) groups read, \1 answered\n/);
});
