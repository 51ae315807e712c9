// The answer may only narrow the offer; a mismatch names both sides' values.
import test from "ava";
import fc from "fast-check";
import { answerOffer, Capabilities, checkAnswer, DEFAULT_LIMITS, Feature, MAX_LIMITS, MIN_LIMITS } from "../../src/link/negotiation.js";
import { LinkError, LinkErrorCode } from "../../src/link/link-error.js";

const limitsArb = fc.record({
  maxPayload: fc.integer({ min: MIN_LIMITS.maxPayload, max: MAX_LIMITS.maxPayload }),
  maxBatch: fc.integer({ min: MIN_LIMITS.maxBatch, max: MAX_LIMITS.maxBatch }),
  maxInFlight: fc.integer({ min: MIN_LIMITS.maxInFlight, max: MAX_LIMITS.maxInFlight }),
  heartbeatMs: fc.integer({ min: MIN_LIMITS.heartbeatMs, max: MAX_LIMITS.heartbeatMs }),
});
const capsArb: fc.Arbitrary<Capabilities> = fc
  .record({ versionMin: fc.integer({ min: 1, max: 4 }), span: fc.integer({ min: 0, max: 3 }), features: fc.nat({ max: 7 }), limits: limitsArb })
  .map(({ versionMin, span, features, limits }) => ({ versionMin, versionMax: versionMin + span, features, limits }));

test("any answer the agent computes passes the relay's check, and narrows", (t) => {
  fc.assert(
    fc.property(capsArb, capsArb, (offer, agent) => {
      let answer;
      try {
        answer = answerOffer(offer, agent);
      } catch (err) {
        return (err as LinkError).code === LinkErrorCode.NEGOTIATION_FAILED;
      }
      const checked = checkAnswer(offer, answer);
      return (
        checked.version >= offer.versionMin && checked.version <= offer.versionMax &&
        (checked.features & ~offer.features) === 0 && (checked.features & ~agent.features) === 0 &&
        checked.limits.maxPayload <= offer.limits.maxPayload && checked.limits.maxBatch <= offer.limits.maxBatch &&
        checked.limits.maxInFlight <= offer.limits.maxInFlight && checked.limits.heartbeatMs >= offer.limits.heartbeatMs
      );
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

const offer: Capabilities = { versionMin: 1, versionMax: 1, features: Feature.RAW_RECORDS | Feature.CANCELS, limits: DEFAULT_LIMITS };

test("a version mismatch fails with both sides' versions named", (t) => {
  const err = t.throws(() => answerOffer(offer, { ...offer, versionMin: 2, versionMax: 3 }), { instanceOf: LinkError });
  t.is(err?.code, LinkErrorCode.NEGOTIATION_FAILED);
  t.regex(err?.message ?? "", /host offers 1\.\.1, agent speaks 2\.\.3/);
});

test("an answer that widens a limit is refused, naming both values", (t) => {
  const err = t.throws(() => checkAnswer(offer, { version: 1, features: 0, limits: { ...DEFAULT_LIMITS, maxBatch: DEFAULT_LIMITS.maxBatch + 1 } }));
  t.regex(err?.message ?? "", /max_batch: agent answered 257, host offered 256/);
});

test("an answer with a feature not offered is refused, naming both masks", (t) => {
  const err = t.throws(() => checkAnswer(offer, { version: 1, features: 1 << 2, limits: DEFAULT_LIMITS }));
  t.regex(err?.message ?? "", /agent accepted features 0x4, host offered 0x3/);
});

test("an answer with a version outside the offer is refused", (t) => {
  const err = t.throws(() => checkAnswer(offer, { version: 2, features: 0, limits: DEFAULT_LIMITS }));
  t.regex(err?.message ?? "", /agent chose version 2, host offered 1\.\.1/);
});

test("zero in an answer means the offered value", (t) => {
  const agreed = checkAnswer(offer, { version: 1, features: 1, limits: { maxPayload: 0, maxBatch: 0, maxInFlight: 10, heartbeatMs: 0 } });
  t.deepEqual(agreed.limits, { ...DEFAULT_LIMITS, maxInFlight: 10 });
});

test("an agent limit below the least usable is refused", (t) => {
  const err = t.throws(() => checkAnswer(offer, { version: 1, features: 0, limits: { ...DEFAULT_LIMITS, maxPayload: 100 } }));
  t.regex(err?.message ?? "", /max_payload: agent answered 100, the least usable is 4096/);
});

test("heartbeat_ms narrows upward: a longer interval is accepted up to the ceiling, a shorter one or one above it is refused", (t) => {
  const answered = (heartbeatMs: number) => checkAnswer(offer, { version: 1, features: 0, limits: { ...DEFAULT_LIMITS, heartbeatMs } });
  t.is(answered(DEFAULT_LIMITS.heartbeatMs * 5).limits.heartbeatMs, DEFAULT_LIMITS.heartbeatMs * 5);
  t.is(answered(MAX_LIMITS.heartbeatMs).limits.heartbeatMs, MAX_LIMITS.heartbeatMs);
  t.regex(t.throws(() => answered(DEFAULT_LIMITS.heartbeatMs - 1))?.message ?? "", /heartbeat_ms: agent answered 999, host offered 1000; an answer may only narrow the offer/);
  t.regex(t.throws(() => answered(MAX_LIMITS.heartbeatMs + 1))?.message ?? "", /heartbeat_ms: agent answered 60001/);
  // The agent's side: the larger of the two intervals.
  t.is(answerOffer(offer, { ...offer, limits: { ...DEFAULT_LIMITS, heartbeatMs: 3000 } }).limits.heartbeatMs, 3000);
  t.is(answerOffer({ ...offer, limits: { ...DEFAULT_LIMITS, heartbeatMs: 3000 } }, offer).limits.heartbeatMs, 3000);
});
