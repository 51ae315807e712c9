// A relay on the kernel emulator with its own load (--source emulator
// --rate N), stopped in order: nothing was violated, so nothing is logged
// above info (the load's end at quit() is no news, nor are the groups still
// in the socket, unread: a kernel keeps those for the next reader). And a
// stop asked for while the relay or the keeper still starts, sent at a
// failpoint: it waits until they can stop in order.
import test from "ava";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { RELAY_CLI, run, startAgent, startRelay, tempDir, waitStatus } from "./control-harness.js";

test("a clean stop logs no warning, and the emulator's final account has no violation", async (t) => {
  // The agent's window fits what the relay holds (the default maxHeld, less the read-ahead).
  const relay = await startRelay(t, { source: "emulator", rate: 2000 });
  startAgent(t, relay, 900, [], { maxInFlight: 900 });
  await waitStatus(relay.control, (s) => s.session.state === "up" && s.counters.groups > 500, "groups read and answered");
  t.is(await relay.stop(), 0, relay.stderr());
  const lines = relay.stderr().trim().split("\n").map((l) => JSON.parse(l) as { level: string; msg: string; violations?: number });
  // From the stop on (a slow start may warn that no agent came within the grace period: not what is tested here).
  const stop = lines.findIndex((l) => l.msg.startsWith("stopping"));
  t.true(stop >= 0, relay.stderr());
  t.deepEqual(lines.slice(stop).filter((l) => l.level !== "info" && l.level !== "debug"), [], "nothing above info");
  const final = lines.find((l) => l.msg === "kernel emulator final stats");
  t.truthy(final, relay.stderr());
  t.is(final!.violations, 0);
});

interface LogLine { level: string; msg: string; component?: string; violations?: number; groups?: number; answers?: Record<string, number> }
const logLines = (stderr: string): LogLine[] => stderr.trim().split("\n").map((l) => JSON.parse(l) as LogLine);

test("a SIGTERM while the relay starts (its sources open, nothing serving yet) is carried out once it serves: ready, then a stop in order, exit 0", async (t) => {
  const dir = tempDir(t, "iopf-stop-");
  const relay = run(t, RELAY_CLI, ["--source", "emulator", "--rate", "2000", "--socket-path", join(dir, "link.sock"), "--log-format", "json"],
    { ...process.env, IOPF_FAILPOINT: "relay-starting=SIGTERM" });
  t.is(await relay.exited, 0, `Node's default for SIGTERM kills at once, answering nothing:\n${relay.stderr()}`);
  const msgs = logLines(relay.stderr()).map((l) => l.msg);
  const ready = msgs.indexOf("relay ready");
  t.true(ready >= 0 && msgs.findIndex((m) => m.startsWith("stopping")) > ready, relay.stderr());
  const stopped = logLines(relay.stderr()).find((l) => l.msg === "stopped");
  t.truthy(stopped, relay.stderr());
  t.is(Object.values(stopped!.answers ?? {}).reduce((a, b) => a + b, 0), stopped!.groups ?? -1, "every group read is answered");
  t.is(logLines(relay.stderr()).find((l) => l.msg === "kernel emulator final stats")?.violations, 0, relay.stderr());
});

test("a SIGTERM while the keeper opens what it holds is carried out once it has: the emulator quit in order, its files gone, exit 0", async (t) => {
  const dir = tempDir(t, "iopf-stop-");
  const runtime = tempDir(t, "iopf-runtime-");
  const keeper = run(t, RELAY_CLI, ["--keeper", "--source", "emulator", "--rate", "2000", "--socket-path", join(dir, "link.sock"), "--log-format", "json"],
    { ...process.env, XDG_RUNTIME_DIR: runtime, IOPF_FAILPOINT: "keeper-starting=SIGTERM" });
  t.is(await keeper.exited, 0, `Node's default for SIGTERM kills at once, leaving the emulator and the keeper's files:\n${keeper.stderr()}`);
  const lines = logLines(keeper.stderr());
  t.true(lines.some((l) => l.component === "iopf-relay-keeper" && l.msg.startsWith("stopping")), keeper.stderr());
  t.true(lines.some((l) => l.msg === "kernel emulator final stats"), keeper.stderr());
  t.deepEqual(readdirSync(runtime), [], "the keeper's working directory is gone");
});
