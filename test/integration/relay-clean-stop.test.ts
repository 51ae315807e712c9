// A relay on the kernel emulator with its own load (--source emulator
// --rate N), stopped in order: nothing was violated, so nothing is logged
// above info (the load's end at quit() is no news).
import test from "ava";
import { startRelay, waitStatus } from "./control-harness.js";

test("a clean stop logs no warning, and the emulator's final account has no violation", async (t) => {
  const relay = await startRelay(t, { source: "emulator", rate: 2000 });
  await waitStatus(relay.control, (s) => s.counters.groups > 500, "groups read");
  t.is(await relay.stop(), 0, relay.stderr());
  const lines = relay.stderr().trim().split("\n").map((l) => JSON.parse(l) as { level: string; msg: string; violations?: number });
  t.deepEqual(lines.filter((l) => l.level !== "info" && l.level !== "debug"), [], "nothing above info");
  const final = lines.find((l) => l.msg === "kernel emulator final stats");
  t.truthy(final, relay.stderr());
  t.is(final!.violations, 0);
});
