// One measured load on either path: start it, (warm it up,) run the
// emulator's load, read the emulator's counters and the processes' CPU and
// memory around it, stop it, and check the emulator saw no contract
// violation (an unanswered, repeated or unknown cookie).
import { EmulatorStats, KernelEmulator, LoadOptions } from "../../src/fault/emulator/kernel-emulator.js";
import { BaselinePath } from "./baseline.js";
import { allThreads, cpuSeconds, CpuSplit, memoryMiB, threadCpu } from "./proc-stat.js";
import { RelayPath, RelayPathOptions } from "./relay-path.js";

export interface Latency {
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
}

export interface LoadResult {
  /** Groups answered SUCCESS (by the responder, not a deadline) during the load, per second of load. */
  groupsPerSec: number;
  answered: number;
  /** Groups answered INVALID: by the relay's deadline or overflow when the responder answers SUCCESS. */
  answeredInvalid: number;
  latency: Latency;
  /** Violations the emulator counted, final (after everything stopped). */
  violations: number;
  /** The same by kind (those with a count only). */
  violationKinds: Record<string, number>;
}

/** A load's violations for a table: the count, and by kind when there are any. */
export function violationText(r: LoadResult): string {
  const kinds = Object.entries(r.violationKinds).map(([k, n]) => `${k} ${n}`).join(", ");
  return kinds ? `${r.violations} (${kinds})` : String(r.violations);
}

/** Kinds with a non-zero count. */
function nonZero(kinds: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(kinds).filter(([, n]) => n > 0));
}

const DRAIN_MS = 10_000;

/** Waits (at most DRAIN_MS) until every group delivered has its answer: stopping earlier leaves groups in the socket that nobody reads. */
async function drained(emulator: KernelEmulator): Promise<EmulatorStats> {
  const until = Date.now() + DRAIN_MS;
  let s = await emulator.stats();
  while (s.outstanding > 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
    s = await emulator.stats();
  }
  return s;
}

/** What one answered group cost a thread (or threads), on average over the load. */
export interface GroupCost {
  userUs: number;
  sysUs: number;
  /** Times the thread went to sleep, each a wake-up to pay for. */
  sleeps: number;
}

export interface BaselineLoadResult extends LoadResult {
  responderCpuSPerMillion: number;
  responderCost: GroupCost;
}

export interface RelayLoadResult extends LoadResult {
  relayCpuSPerMillion: number;
  agentCpuSPerMillion: number;
  relayRssMiB: number;
  agentRssMiB: number;
  /** The relay's main thread; its other threads (the fault-pump worker, V8's helpers); the agent, every thread. */
  cost: { relayMain: GroupCost; relayOthers: GroupCost; agent: GroupCost };
}

export function groupCost(before: CpuSplit, after: CpuSplit, groups: number): GroupCost {
  const per = (d: number): number => (groups > 0 ? d / groups : NaN);
  return { userUs: per((after.userS - before.userS) * 1e6), sysUs: per((after.sysS - before.sysS) * 1e6), sleeps: per(after.sleeps - before.sleeps) };
}

export function latencyOf(s: EmulatorStats): Latency {
  const us = (ns: number): number => ns / 1000;
  return { p50Us: us(s.latencyNs.p50), p99Us: us(s.latencyNs.p99), p999Us: us(s.latencyNs.p999), maxUs: us(s.latencyNs.max) };
}

export async function relayLoad(path: RelayPathOptions, load: LoadOptions, warmUpMs: number): Promise<RelayLoadResult> {
  const p = await RelayPath.start(path);
  let final: EmulatorStats;
  let result: Omit<RelayLoadResult, "violations" | "violationKinds">;
  try {
    if (warmUpMs > 0) await p.warmUp({ ...load, durationMs: warmUpMs });
    const cpu0 = [cpuSeconds(p.relay.pid), cpuSeconds(p.agent.pid)] as const;
    const threads0 = [threadCpu(p.relay.pid), threadCpu(p.agent.pid)] as const;
    const ran = await p.emulator.load(load);
    const stats = await p.emulator.stats();
    const cpu1 = [cpuSeconds(p.relay.pid), cpuSeconds(p.agent.pid)] as const;
    const threads1 = [threadCpu(p.relay.pid), threadCpu(p.agent.pid)] as const;
    await drained(p.emulator);
    const answered = stats.answeredSuccess + stats.answeredInvalid;
    const perMillion = (cpu: number): number => (answered > 0 ? (cpu / answered) * 1e6 : NaN);
    result = {
      groupsPerSec: stats.answeredSuccess / (ran.elapsedNs / 1e9),
      answered,
      answeredInvalid: stats.answeredInvalid,
      latency: latencyOf(stats),
      relayCpuSPerMillion: perMillion(cpu1[0] - cpu0[0]),
      agentCpuSPerMillion: perMillion(cpu1[1] - cpu0[1]),
      relayRssMiB: memoryMiB(p.relay.pid).rss,
      agentRssMiB: memoryMiB(p.agent.pid).rss,
      cost: {
        relayMain: groupCost(threads0[0].main, threads1[0].main, answered),
        relayOthers: groupCost(threads0[0].others, threads1[0].others, answered),
        agent: groupCost(allThreads(threads0[1]), allThreads(threads1[1]), answered),
      },
    };
  } finally {
    final = await p.stop();
  }
  return { ...result, violations: final.violationCount, violationKinds: nonZero(final.violationKinds) };
}

export async function baselineLoad(load: LoadOptions, delayUs = 0): Promise<BaselineLoadResult> {
  const b = await BaselinePath.start(delayUs);
  let result: Omit<BaselineLoadResult, "violations" | "violationKinds">;
  let final: EmulatorStats;
  try {
    const cpu0 = cpuSeconds(b.responder.pid);
    const threads0 = allThreads(threadCpu(b.responder.pid));
    const ran = await b.emulator.load(load);
    let stats = await b.emulator.stats();
    // A delayed answer is still on its way when the load ends; wait for it, as its lateness is the point.
    const until = Date.now() + delayUs / 1000 + 1000;
    while (delayUs > 0 && stats.outstanding > 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
      stats = await b.emulator.stats();
    }
    const answered = stats.answeredSuccess + stats.answeredInvalid;
    const cpu = cpuSeconds(b.responder.pid) - cpu0;
    result = {
      groupsPerSec: stats.answeredSuccess / (ran.elapsedNs / 1e9), answered, answeredInvalid: stats.answeredInvalid, latency: latencyOf(stats),
      responderCpuSPerMillion: answered > 0 ? (cpu / answered) * 1e6 : NaN,
      responderCost: groupCost(threads0, allThreads(threadCpu(b.responder.pid)), answered),
    };
  } finally {
    final = await b.stop();
  }
  return { ...result, violations: final.violationCount, violationKinds: nonZero(final.violationKinds) };
}
