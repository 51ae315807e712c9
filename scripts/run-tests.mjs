// Runs the test phases with ava and ends with one line:
// "tests: N passed, M failed" (plus skipped when any), exit 1 on any failure.
//   unit: test/unit and test/integration (no VM; seconds)
//   vm:   test/vm (QEMU with the test kernel)
//   all:  both
import { spawn } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const phases = {
  unit: ["build/test/unit/**/*.test.js", "build/test/integration/**/*.test.js"],
  vm: ["build/test/vm/**/*.test.js"],
};
// One test file at a time (tests within a file still run together): on 2
// cores a file that saturates the CPU (floods, full-speed emulator runs, a
// QEMU VM) would stretch the timing of whatever file runs beside it.
const phaseArgs = { unit: ["--concurrency", "1"], vm: ["--concurrency", "1"] };
const which = process.argv[2] ?? "all";
const selected = which === "all" ? ["unit", "vm"] : [which];
if (!selected.every((p) => p in phases)) {
  console.error(`run-tests: unknown phase "${which}"; expected one of: unit, vm, all`);
  process.exit(2);
}
const extra = process.argv.slice(3);

function runPhase(name) {
  return new Promise((resolve) => {
    const args = [join(root, "node_modules", "ava", "entrypoints", "cli.mjs"), "--tap", ...phaseArgs[name], ...phases[name], ...extra];
    const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
    const counts = { pass: 0, fail: 0, skip: 0 };
    let tail = "";
    child.stdout.on("data", (chunk) => {
      process.stdout.write(chunk);
      tail += chunk.toString("utf8");
      const lines = tail.split("\n");
      tail = lines.pop() ?? "";
      for (const line of lines) {
        const m = /^# (pass|fail|skip) +(\d+)/.exec(line);
        if (m) counts[m[1]] = Number(m[2]);
      }
    });
    child.on("close", (code) => {
      // ava exits non-zero without a failed test when it could not run one
      // (no files matched, a worker crashed, a timeout): count that as a failure.
      if (code !== 0 && counts.fail === 0) {
        console.log(`# phase ${name}: ava exited ${code} with no failed test recorded; counting it as one failure`);
        counts.fail = 1;
      }
      resolve(counts);
    });
  });
}

const total = { pass: 0, fail: 0, skip: 0 };
for (const name of selected) {
  console.log(`# phase ${name}`);
  const c = await runPhase(name);
  console.log(`# phase ${name}: ${c.pass} passed, ${c.fail} failed, ${c.skip} skipped`);
  total.pass += c.pass; total.fail += c.fail; total.skip += c.skip;
}
console.log(`tests: ${total.pass} passed, ${total.fail} failed${total.skip ? `, ${total.skip} skipped` : ""}`);
// A run where nothing passed fails, unless tests were skipped for a stated
// reason (VM tests outside CI on a machine that cannot install QEMU).
process.exit(total.fail === 0 && total.pass + total.skip > 0 ? 0 : 1);
