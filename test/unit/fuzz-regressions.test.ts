// Inputs the fuzzers (test/unit/fuzz-link.test.ts, scripts/fuzz.mjs) found
// failing, kept as fixed cases so they stay fixed. Each names what it broke.
import test from "ava";
import { checkReceiver, checkRoundTrip } from "../support/hostile-fuzz.js";

test("receiver: a header split across reads, then a resync inside its frame, still counts at most 15 bytes while hunting", (t) => {
  // The 16 header bytes collected in the scratch buffer were still counted
  // by bufferedBytes after hunt() (seed -696340265).
  t.notThrows(() => checkReceiver([
    Buffer.from([255, 105, 111, 112, 102, 65, 67, 75, 136, 119, 102, 85, 68, 51, 34, 17, 1]),
    Buffer.from([0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 55, 0, 0, 0, 8, 128, 1, 16, 128, 128, 128, 128, 1, 24, 128, 128, 128, 128, 128, 128, 128, 1, 34, 24, 8, 128, 128, 255, 105, 111, 112, 102, 65, 67, 75, 136, 119, 102, 85, 68, 51, 34, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
  ]));
});

test("negotiation: an agent refuses a Hello whose heartbeat_ms is above the ceiling instead of agreeing to it", (t) => {
  // answerOffer took max(offered, ours) for heartbeat_ms with no ceiling, so a
  // host could switch the agent's liveness off (seed -1063711539).
  t.notThrows(() => checkRoundTrip({ versionMin: 0, versionMax: 1, features: 0, limits: { maxPayload: 0, maxBatch: 0, maxInFlight: 0, heartbeatMs: 60001 } }));
});
