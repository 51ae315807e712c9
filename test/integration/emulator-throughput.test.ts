// The emulator must never be the bottleneck of a relay benchmark: measured
// against the trivial C responder, it should deliver far more groups per
// second than the relay's own figure (kernel-pump.test.ts).
import test from "ava";
import { KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";

// Well below what it does on a 2-core CI machine (~1.5M groups/s), well above what a relay reaches.
const MIN_GROUPS_PER_S = 200_000;

for (const records of [1, 4]) {
  test.serial(`delivers groups of ${records} record(s) at full speed to a C responder`, async (t) => {
    const emu = await KernelEmulator.start({ responder: true });
    try {
      const { generated, elapsedNs } = await emu.load({ devices: 8, records, rate: 0, durationMs: 1500, maxOutstanding: 4096 });
      const perS = generated / (elapsedNs / 1e9);
      const stats = await emu.quit();
      t.log(`emulator -> C responder: ${Math.round(perS)} groups/s, ${Math.round(perS * records)} records/s, ` +
        `latency p50 ${stats.latencyNs.p50} ns p99 ${stats.latencyNs.p99} ns`);
      t.true(perS > MIN_GROUPS_PER_S, `expected more than ${MIN_GROUPS_PER_S} groups/s, got ${Math.round(perS)}`);
      // quit counts groups still in flight at that instant as unanswered; everything else must be clean.
      t.true(stats.violations.every((v) => v.kind === "unanswered-group"), JSON.stringify(stats.violations.slice(0, 5)));
      t.is(stats.answeredSuccess + stats.outstanding, stats.deliveredGroups);
    } finally {
      await emu.close();
    }
  });
}
