// Summarizes a V8 .cpuprofile (node --cpu-prof): self time per function,
// summed over every node of the call tree that runs it, as a share of the
// busy time (samples not in "(idle)").

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

export interface SelfTime {
  /** "name (file:line)"; anonymous functions by place. */
  function: string;
  /** Share of busy samples, 0..1. */
  share: number;
}

export interface ProfileSummary {
  busySeconds: number;
  idleShare: number;
  top: SelfTime[];
}

/** "name (file:line)", the way every table and chart of the report names a function. */
export function frameName(frame: ProfileNode["callFrame"]): string {
  return (frame.functionName || "(anonymous)") + placeOf(frame);
}

function placeOf(frame: ProfileNode["callFrame"]): string {
  if (!frame.url) return "";
  // Paths only as far as the project: build/src/link/x.js, dist/iopf-agent.mjs, node:internal/...
  const m = /(build\/.*|dist\/.*|node:.*)$/.exec(frame.url.replace(/^file:\/\//, ""));
  return ` (${m ? m[1] : frame.url.split("/").pop()}:${frame.lineNumber + 1})`;
}

export function summarizeProfile(profile: CpuProfile, topN = 15): ProfileSummary {
  if (!Array.isArray(profile.nodes)) throw new Error("not a .cpuprofile: expected a JSON object with a nodes array (node --cpu-prof writes one)");
  const hits = new Map<string, number>();
  let total = 0, idle = 0;
  for (const node of profile.nodes) {
    const n = node.hitCount ?? 0;
    if (n === 0) continue;
    total += n;
    if (node.callFrame.functionName === "(idle)") {
      idle += n;
      continue;
    }
    const key = frameName(node.callFrame);
    hits.set(key, (hits.get(key) ?? 0) + n);
  }
  const busy = total - idle;
  const seconds = (profile.endTime - profile.startTime) / 1e6;
  const top = [...hits.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([fn, n]) => ({ function: fn, share: busy > 0 ? n / busy : 0 }));
  return { busySeconds: total > 0 ? (seconds * busy) / total : 0, idleShare: total > 0 ? idle / total : 0, top };
}
