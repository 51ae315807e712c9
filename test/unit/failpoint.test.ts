// IOPF_FAILPOINT: the armed point sends the process its signal at the Nth
// pass; a spec that cannot be read stops the program, since a crash test
// whose failpoint silently never fires would pass without testing anything.
import test from "ava";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const MODULE = fileURLToPath(new URL("../../src/kernel/failpoint.js", import.meta.url));

/** Runs a node that passes the point named "here" three times, printing each pass. */
function passes(spec: string): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const script = `const { failpoint } = await import(${JSON.stringify(MODULE)}); for (let i = 1; i <= 3; i++) { failpoint("here"); process.stdout.write(i + " "); await new Promise((r) => setTimeout(r, 20)); }`;
  return spawnSync(process.execPath, ["--input-type=module", "-e", script], { env: { ...process.env, IOPF_FAILPOINT: spec }, encoding: "utf8" });
}

test("name:N[=SIGNAL]: the Nth pass sends the signal, SIGKILL by default", (t) => {
  t.like(passes("here"), { signal: "SIGKILL", stdout: "" });
  t.like(passes("here:2"), { signal: "SIGKILL", stdout: "1 " });
  t.like(passes("here:3=SIGTERM"), { signal: "SIGTERM", stdout: "1 2 " });
  t.like(passes("elsewhere=SIGTERM"), { status: 0, signal: null, stdout: "1 2 3 " });
});

test("a spec that cannot be read says what is expected, and nothing runs", (t) => {
  for (const spec of ["here:x", "here=SIGNOPE", "Here"]) {
    const r = passes(spec);
    t.not(r.status, 0, spec);
    t.is(r.stdout, "", spec);
    t.regex(r.stderr, new RegExp(`IOPF_FAILPOINT="${spec}": expected name\\[:N\\]\\[=SIGNAL\\]`), spec);
  }
});
