// A process with a running fault pump ends on process.exit() and on an
// uncaught exception: a worker left blocked in poll() would hang it for ever.
import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const libc = fileURLToPath(new URL("../../src/kernel/libc.js", import.meta.url));
const pump = fileURLToPath(new URL("../../src/kernel/fault-pump.js", import.meta.url));

function runChild(ending: string): { status: number | null; stderr: string } {
  const script = `
    const { socketpair } = await import(${JSON.stringify(libc)});
    const { FaultPump } = await import(${JSON.stringify(pump)});
    const [a] = socketpair();
    const p = new FaultPump({ maxHeld: 100 });
    await p.start();
    p.add(a, "stream", { sweep: false });
    setTimeout(() => { ${ending} }, 50);
  `;
  // A file, not --eval: the pump's worker would inherit --input-type and fail.
  const file = join(mkdtempSync(join(tmpdir(), "iopf-pump-exit-")), "child.mjs");
  writeFileSync(file, script);
  const r = spawnSync(process.execPath, [file], { timeout: 10_000, encoding: "utf8" });
  return { status: r.status, stderr: r.stderr };
}

test("process.exit() with a running pump ends the process", (t) => {
  const r = runChild("process.exit(3)");
  // A hung process would be killed by spawnSync's timeout: its status would be null, not 3.
  t.is(r.status, 3, r.stderr);
});

test("an uncaught exception with a running pump ends the process", (t) => {
  const r = runChild("throw new Error('boom')");
  t.is(r.status, 1);
  t.regex(r.stderr, /boom/);
});
