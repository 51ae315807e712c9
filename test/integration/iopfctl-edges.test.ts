// iopfctl where a pipeline or a relay ends under it: a reader that stops
// (`| head`) ends it quietly with status 0; a relay that dies mid-stream ends
// `trace` with status 1 and a line saying so. And inject's refusals and
// bounds: the fix the relay can take, the most one request raises, and group
// indices that every vIOMMU model can show.
import test from "ava";
import { spawn } from "node:child_process";
import { MAX_INJECT } from "../../src/relay/control/inject-limits.js";
import { IOPFCTL_CLI, Proc, run, startRelay, waitStatus } from "./control-harness.js";

async function ctl(t: Parameters<typeof run>[0], args: string[]): Promise<Proc & { code: number | null }> {
  const p = run(t, IOPFCTL_CLI, args);
  return { ...p, code: await p.exited };
}

/** `iopfctl ARGS | head -n LINES` in bash; iopfctl's own exit status and stderr. */
function piped(t: { teardown(f: () => void): void }, args: string[], lines: number): Promise<{ status: number; stderr: string; out: string }> {
  const quoted = [process.execPath, IOPFCTL_CLI, ...args].map((a) => `'${a}'`).join(" ");
  const child = spawn("bash", ["-c", `${quoted} 2>"$ERRFILE" | head -n ${lines}; echo "status \${PIPESTATUS[0]}"; cat "$ERRFILE" >&2`], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ERRFILE: `/tmp/iopfctl-edges-${process.pid}-${Date.now()}.err` },
  });
  t.teardown(() => child.kill("SIGKILL"));
  let out = "";
  let err = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (err += b.toString()));
  return new Promise((resolve) => child.on("exit", () => {
    const m = /status (\d+)\n$/.exec(out);
    resolve({ status: m ? Number(m[1]) : -1, stderr: err, out: out.replace(/status \d+\n$/, "") });
  }));
}

test("`iopfctl trace | head` and `iopfctl top --plain | head` end quietly with status 0", async (t) => {
  const relay = await startRelay(t, { source: "synthetic", rate: 300 });
  const trace = await piped(t, ["--control", relay.control, "trace"], 3);
  t.is(trace.out.trimEnd().split("\n").length, 3);
  t.is(trace.stderr, "", "no EPIPE, no stack");
  t.is(trace.status, 0);
  const top = await piped(t, ["--control", relay.control, "top", "--plain", "--interval", "0.1"], 2);
  t.is(top.out.trimEnd().split("\n").length, 2);
  t.is(top.stderr, "");
  t.is(top.status, 0);
});

test("trace ends with status 1 and says so when the relay dies mid-stream", async (t) => {
  const relay = await startRelay(t, { source: "synthetic" });
  const trace = run(t, IOPFCTL_CLI, ["--control", relay.control, "trace"]);
  await waitStatus(relay.control, (s) => s.viewers === 1, "the trace's viewer");
  relay.child.kill("SIGKILL");
  t.is(await trace.exited, 1, trace.stderr());
  t.regex(trace.stderr(), /^iopfctl: the connection to the relay was lost \(did it stop\?\)\n$/);
});

test("trace ends with status 1 when the relay stops in order", async (t) => {
  const relay = await startRelay(t, { source: "synthetic" });
  const trace = run(t, IOPFCTL_CLI, ["--control", relay.control, "trace"]);
  await waitStatus(relay.control, (s) => s.viewers === 1, "the trace's viewer");
  t.is(await relay.stop(), 0);
  t.is(await trace.exited, 1, trace.stderr());
  t.is(trace.stderr(), "iopfctl: the relay closed the event stream: relay shutting down\n");
});

test("inject into a relay whose kernel emulator takes injections names --emulator as the fix", async (t) => {
  const relay = await startRelay(t, { source: "emulator" });
  const r = await ctl(t, ["--control", relay.control, "inject", "--dev", "1"]);
  t.is(r.code, 1);
  t.regex(r.stderr(), /HTTP 409: this relay has no synthetic source, but its kernel emulator takes injections: add --emulator to iopfctl inject or replay/);
  t.notRegex(r.stderr(), /--source synthetic/);
});

test("inject --count is bounded by what the relay raises per request; a usage error is one line", async (t) => {
  const r = await ctl(t, ["inject", "--dev", "1", "--count", String(MAX_INJECT + 1)]);
  t.is(r.code, 2);
  t.regex(r.stderr(), new RegExp(`^iopfctl: --count: expected an integer 1\\.\\.${MAX_INJECT} .*; run iopfctl --help for the commands\n$`));
});

test("injected groups' indices stay within what the vIOMMU model shows: none is answered as an unknown device", async (t) => {
  // VT-d and SMMUv3 carry 9-bit group indices; the emulator stepped grpid past them (and past 65535 for virtio-iommu).
  const config = { viommu: "vtd", devices: [{ devId: 1, requesterId: "00:03.0", name: "nic0" }], limits: { sessionGraceMs: 1 } };
  const relay = await startRelay(t, { source: "emulator", config });
  const r = await ctl(t, ["--control", relay.control, "inject", "--emulator", "--dev", "1", "--count", "1200"]);
  t.is(r.code, 0, r.stderr());
  const s = await waitStatus(relay.control, (x) => x.counters.answered === 1200, "1200 answers");
  t.deepEqual(Object.keys(s.counters.answers), ["session-lost"], JSON.stringify(s.counters.answers));
});

test("an inject whose pages would run past the top of the address space is refused", async (t) => {
  const relay = await startRelay(t, { source: "synthetic" });
  const r = await ctl(t, ["--control", relay.control, "inject", "--dev", "1", "--addr", String(Number.MAX_SAFE_INTEGER - 4095), "--count", "2"]);
  t.is(r.code, 1);
  t.regex(r.stderr(), /HTTP 400: addr: 2 groups of 1 page from 0x1ffffffffff000 run past 0x1fffffffffffff/);
});
