// A relay on the kernel emulator with its own load (--source emulator
// --rate N), stopped in order: nothing was violated, so nothing is logged
// above info (the load's end at quit() is no news, nor are the groups still
// in the socket, unread: a kernel keeps those for the next reader).
import test from "ava";
import { startAgent, startRelay, waitStatus } from "./control-harness.js";

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
