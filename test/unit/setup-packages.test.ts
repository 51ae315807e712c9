// scripts/setup.mjs --for-tests must install every Debian package any phase
// of the suite needs before the first test runs: the unit phase runs first
// and its qemu-args test asks the installed QEMU, which only the VM phase
// used to install.
import test from "ava";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { projectRoot } from "../../scripts/vm/paths.js";
import { VM_PACKAGES } from "../../scripts/vm/prerequisites.js";

const setupList = (...args: string[]): string[] =>
  execFileSync(process.execPath, [join(projectRoot, "scripts", "setup.mjs"), ...args, "--list"], { encoding: "utf8" })
    .split("\n").filter((l) => l !== "");

test("setup --for-tests ensures every package the VM tests name", (t) => {
  const listed = setupList("--for-tests");
  t.deepEqual(VM_PACKAGES.filter((p) => !listed.includes(p)), [], `setup --for-tests lists ${listed.join(" ")}`);
});

test("setup --for-tests ensures the tools the tests outside the VM run", (t) => {
  const listed = setupList("--for-tests");
  for (const p of ["qemu-system-x86", "gcc", "python3", "chromium", "systemd"]) t.true(listed.includes(p), `${p} in ${listed.join(" ")}`);
});

test("setup without --for-tests ensures only what npm start needs", (t) => {
  const listed = setupList();
  t.true(listed.includes("gcc"));
  t.false(listed.includes("qemu-system-x86"), `npm start installs no QEMU; listed ${listed.join(" ")}`);
});

test("setup --for-bench adds perf, which the bench's tail section runs, and only it", (t) => {
  const bench = setupList("--for-bench");
  t.true(bench.includes("linux-perf"), `listed ${bench.join(" ")}`);
  t.deepEqual(bench.filter((p) => !setupList().includes(p)), ["linux-perf"]);
});
