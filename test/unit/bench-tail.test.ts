// The tail's anatomy: each slow group's wait cut into states by priority,
// and perf sched timehist's lines read into run and wait stretches.
import test from "ava";
import { anatomy } from "../../scripts/bench/tail/anatomy.js";
import { parseTimehist } from "../../scripts/bench/tail/sched-trace.js";

const us = 1000;

test("each moment of a group's wait counts once, in the first state that holds", (t) => {
  // One group waits 100 us from t=1000 us: a collection from 10 to 30 us into it, a thread waiting for a core
  // from 20 to 60 us (the collection wins where they overlap), nothing from 60 to 100 us.
  const a = anatomy([{ deliveredNs: 1000 * us, latencyNs: 100 * us }], [
    { name: "relay GC", intervals: [{ startNs: 1010 * us, endNs: 1030 * us }] },
    { name: "waiting", intervals: [{ startNs: 1020 * us, endNs: 1060 * us }, { startNs: 5000 * us, endNs: 6000 * us }] },
  ], ["relay GC"]);
  t.is(a.groups, 1);
  t.is(a.totalNs, 100 * us);
  t.deepEqual(a.shares.map((s) => [s.name, Math.round(s.share * 100)]), [["relay GC", 20], ["waiting", 30], ["idle", 50]]);
  t.is(a.withGc, 1);
});

test("states outside a group's wait do not count, and a group with no collection is counted as such", (t) => {
  const a = anatomy([{ deliveredNs: 0, latencyNs: 50 * us }, { deliveredNs: 1000 * us, latencyNs: 50 * us }], [
    { name: "agent GC", intervals: [{ startNs: 1000 * us, endNs: 1050 * us }] },
  ], ["agent GC"]);
  t.deepEqual(a.shares.map((s) => Math.round(s.share * 100)), [50, 50]);
  t.is(a.withGc, 0.5);
});

test("timehist lines become stretches: waiting from wake-up to run, then running, on the threads asked for", (t) => {
  const text = [
    "           time    cpu  task name                       wait time  sch delay   run time",
    "                        [tid/pid]                          (msec)     (msec)     (msec)",
    "--------------- ------  ------------------------------  ---------  ---------  ---------",
    "    4754.615962 [0000]  node[20910/20789]                   0.000      0.003      0.087 ",
    "    4754.615998 [0001]  node[20789]                         0.000      0.023      0.017 ",
    "    4754.616101 [0000]  V8 DefaultWorke[20911/20789]        0.071      0.000      0.024 ",
  ].join("\n");
  const m = parseTimehist(text, new Set([20789, 20910]));
  t.deepEqual(m.get(20910), [{ waitStartNs: 4754615962000 - 87000 - 3000, runStartNs: 4754615962000 - 87000, endNs: 4754615962000 }]);
  t.deepEqual(m.get(20789), [{ waitStartNs: 4754615998000 - 17000 - 23000, runStartNs: 4754615998000 - 17000, endNs: 4754615998000 }]);
  t.false(m.has(20911));
});
