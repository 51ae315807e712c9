// iopfctl against a live relay process: inject, status, trace with
// filters, top without a terminal, record and replay, and the errors when
// no relay is there or the arguments are wrong.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { IOPFCTL_CLI, Proc, run, startAgent, startRelay, tempDir, waitStatus } from "./control-harness.js";

const CONFIG = {
  viommu: "virtio-iommu",
  devices: [{ devId: 1, endpointId: 8, name: "nic0" }, { devId: 2, endpointId: 9, name: "gpu0" }],
  limits: { sessionGraceMs: 600_000 },
};

async function ctl(t: Parameters<typeof run>[0], args: string[]): Promise<Proc & { code: number | null }> {
  const p = run(t, IOPFCTL_CLI, args);
  return { ...p, code: await p.exited };
}

test.serial("inject, status and a filtered trace against a live relay with an agent", async (t) => {
  const relay = await startRelay(t, { source: "synthetic", config: CONFIG });
  startAgent(t, relay);
  await waitStatus(relay.control, (s) => s.session.state === "up", "the agent's session");
  const c = ["--control", relay.control];

  const trace = run(t, IOPFCTL_CLI, [...c, "trace", "--dev", "2", "--kind", "group-read,answered", "--count", "6"]);
  await waitStatus(relay.control, (s) => s.viewers === 1, "the trace's viewer");
  const inject1 = await ctl(t, [...c, "inject", "--dev", "1", "--pasid", "1", "--addr", "0x10000", "--perm", "rw", "--count", "4"]);
  t.is(inject1.code, 0, inject1.stderr());
  t.is(inject1.stdout(), "raised 4 groups on dev 1 pasid 1 at 0x10000 in the relay's synthetic source\n");
  const inject2 = await ctl(t, [...c, "inject", "--dev", "2", "--pasid", "9", "--count", "3"]);
  t.is(inject2.code, 0, inject2.stderr());

  t.is(await trace.exited, 0, trace.stderr());
  const lines = trace.stdout().trim().split("\n");
  t.is(lines.length, 6);
  t.true(lines.every((l) => /^\d\d:\d\d:\d\d\.\d{3} {2}(group-read|answered) +dev 2 pasid 9 /.test(l)), lines.join("\n"));
  t.is(lines.filter((l) => /success by guest after \d/.test(l)).length, 3);

  await waitStatus(relay.control, (s) => s.counters.answered === 7, "seven answers");
  const status = await ctl(t, [...c, "status"]);
  t.is(status.code, 0, status.stderr());
  const out = status.stdout();
  t.regex(out, /^relay {8}iopf-relay \d+\.\d+\.\d+, pid \d+/m);
  t.regex(out, /^session {6}up, session \d+ with iopf-agent/m);
  t.regex(out, /^answers {6}7: guest 7 success \/ 0 invalid, deadline 0/m);
  t.regex(out, /^ +1 +nic0 +4 +4 +0 +0 /m);
  t.regex(out, /^ +2 +gpu0 +3 +3 +0 +0 /m);
  const json = await ctl(t, [...c, "status", "--json"]);
  t.is(JSON.parse(json.stdout()).counters.groups, 7);

  const top = await ctl(t, [...c, "top", "--interval", "0.2", "--iterations", "2"]);
  t.is(top.code, 0, top.stderr());
  t.notRegex(top.stdout(), /\x1b\[/, "no ANSI when stdout is not a terminal");
  t.is(top.stdout().split("\n").filter((l) => / groups\/s +in flight/.test(l)).length, 2, "one block per refresh");
});

test.serial("record, then replay into a relay's synthetic source", async (t) => {
  const dir = tempDir(t, "iopfctl-record-");
  const file = join(dir, "trace.jsonl");
  const first = await startRelay(t, { source: "synthetic", config: CONFIG });
  // Without an agent the relay reads nothing (groups wait at the source): give each relay one.
  startAgent(t, first);
  await waitStatus(first.control, (s) => s.session.state === "up", "the agent's session");
  const record = run(t, IOPFCTL_CLI, ["--control", first.control, "record", file, "--kind", "group-read", "--count", "5"]);
  await waitStatus(first.control, (s) => s.viewers === 1, "the recorder");
  for (const dev of [1, 2, 1, 2, 2]) {
    t.is((await ctl(t, ["--control", first.control, "inject", "--dev", String(dev), "--pasid", "3"])).code, 0);
    await new Promise((r) => setTimeout(r, 60));
  }
  t.is(await record.exited, 0, record.stderr());
  t.regex(record.stderr(), /recorded 5 events into /);
  const recorded = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  t.deepEqual(recorded.map((e) => [e.kind, e.dev, e.pasid]), [[ "group-read", 1, 3], ["group-read", 2, 3], ["group-read", 1, 3], ["group-read", 2, 3], ["group-read", 2, 3]]);

  const second = await startRelay(t, { source: "synthetic", config: CONFIG });
  startAgent(t, second);
  await waitStatus(second.control, (s) => s.session.state === "up", "the agent's session");
  const replay = await ctl(t, ["--control", second.control, "replay", file, "--speed", "2"]);
  t.is(replay.code, 0, replay.stderr());
  const took = Number(/^replayed 5 groups in 5 requests over ([\d.]+) s into the relay's synthetic source/.exec(replay.stdout())?.[1]);
  const span = (recorded[4].t - recorded[0].t) / 1000 / 2;
  t.true(took >= span * 0.9, `the recorded spacing at --speed 2: at least ${span.toFixed(2)} s expected, took ${took} s`);
  const s = await waitStatus(second.control, (x) => x.counters.groups === 5, "the replayed groups");
  t.deepEqual(s.devices.map((d) => [d.devId, d.groups]), [[1, 2], [2, 3]]);

  const again = await ctl(t, ["--control", second.control, "record", file, "--count", "1"]);
  t.is(again.code, 1);
  t.regex(again.stderr(), /it exists already: choose another name or remove it/);
  const toEmulator = await ctl(t, ["--control", second.control, "replay", file, "--emulator"]);
  t.is(toEmulator.code, 1);
  t.regex(toEmulator.stderr(), /this relay has no kernel emulator, but its synthetic source takes injections: leave out iopfctl's --emulator/);
});

test.serial("clear errors: no relay there, a bad flag, a command's wrong option", async (t) => {
  const missing = await ctl(t, ["--control", "tcp:127.0.0.1:1", "status"]);
  t.is(missing.code, 1);
  t.is(missing.stderr(), "iopfctl: no relay control server at tcp:127.0.0.1:1 (ECONNREFUSED): start iopf-relay with --control tcp:127.0.0.1:1, or point iopfctl at the relay's address with --control ADDR\n");
  const unix = await ctl(t, ["--control", "unix:/nonexistent/iopf.ctl", "trace"]);
  t.regex(unix.stderr(), /no relay control server at unix:\/nonexistent\/iopf.ctl \(ENOENT\)/);
  const badPerm = await ctl(t, ["inject", "--dev", "1", "--perm", "rz"]);
  t.is(badPerm.code, 2);
  t.regex(badPerm.stderr(), /--perm: expected letters of rwxp .* got "rz"/);
  const wrong = await ctl(t, ["status", "--dev", "1"]);
  t.is(wrong.code, 2);
  t.regex(wrong.stderr(), /status takes no --dev; it takes --json/);
  const remote = await ctl(t, ["--control", "tcp:0.0.0.0:9464", "status"]);
  t.is(remote.code, 2);
  t.regex(remote.stderr(), /0\.0\.0\.0 is not a loopback address/);
});

test.serial("inject into a relay without a synthetic source is refused with what to do", async (t) => {
  const relay = await startRelay(t, { source: "emulator", config: CONFIG });
  startAgent(t, relay);
  await waitStatus(relay.control, (s) => s.session.state === "up", "the agent's session");
  const r = await ctl(t, ["--control", relay.control, "inject", "--dev", "1"]);
  t.is(r.code, 1);
  t.regex(r.stderr(), /HTTP 409: this relay has no synthetic source, but its kernel emulator takes injections: add --emulator to iopfctl inject or replay/);
  const viaEmulator = await ctl(t, ["--control", relay.control, "inject", "--dev", "1", "--pasid", "1", "--emulator", "--count", "2"]);
  t.is(viaEmulator.code, 0, viaEmulator.stderr());
  await waitStatus(relay.control, (s) => s.counters.groups === 2, "two groups through the emulator's fault fd");
});
