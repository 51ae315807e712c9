// A flame graph of a V8 .cpuprofile as SVG: the call tree with each
// function's box as wide as its share of busy samples (itself and its
// callees), callers below callees, heaviest callee first. Idle samples are
// left out, so the widths add up to the busy time. Hovering a box shows its
// name and share (an SVG <title>).
import { CpuProfile, frameName, ProfileNode } from "./cpuprofile.js";
import { escapeXml } from "./svg-chart.js";

const WIDTH = 1200, ROW = 17, TOP = 34, BOTTOM = 8, MAX_DEPTH = 60;
/** Narrower boxes are not drawn: their samples still count in their callers' widths. */
const MIN_BOX_PX = 0.4;
const CHAR_PX = 6.4;

interface Box {
  x: number;
  width: number;
  depth: number;
  name: string;
  share: number;
}

function colour(name: string): string {
  if (/\((build|dist)\//.test(name)) return "#f0a35e"; // the project's code
  if (/\(node:/.test(name)) return "#7fb8d8"; // Node's own JavaScript
  if (/^\((garbage collector|program|root)\)/.test(name)) return "#b8b8b8";
  return "#e3c86f"; // native and dependencies
}

/** The boxes of the flame graph, bottom row (the root) at depth 0. */
export function flameBoxes(profile: CpuProfile, width = WIDTH): Box[] {
  if (!Array.isArray(profile.nodes) || profile.nodes.length === 0) throw new Error("not a .cpuprofile: expected a JSON object with a non-empty nodes array (node --cpu-prof writes one)");
  const byId = new Map<number, ProfileNode>(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<number, number>();
  const total = (n: ProfileNode): number => {
    if (n.callFrame.functionName === "(idle)") return 0;
    let sum = totals.get(n.id);
    if (sum === undefined) {
      sum = n.hitCount ?? 0;
      for (const c of n.children ?? []) sum += total(byId.get(c)!);
      totals.set(n.id, sum);
    }
    return sum;
  };
  const root = profile.nodes[0]!;
  const busy = total(root);
  const boxes: Box[] = [];
  if (busy === 0) return boxes;
  const place = (n: ProfileNode, x: number, depth: number): void => {
    const w = (total(n) / busy) * width;
    if (w < MIN_BOX_PX || depth >= MAX_DEPTH) return;
    boxes.push({ x, width: w, depth, name: frameName(n.callFrame), share: total(n) / busy });
    let cx = x;
    const children = (n.children ?? []).map((c) => byId.get(c)!).sort((a, b) => total(b) - total(a));
    for (const c of children) {
      place(c, cx, depth + 1);
      cx += (total(c) / busy) * width;
    }
  };
  place(root, 0, 0);
  return boxes;
}

export function flameGraph(profile: CpuProfile, title: string): string {
  const boxes = flameBoxes(profile);
  const depth = boxes.reduce((d, b) => Math.max(d, b.depth + 1), 1);
  const height = TOP + depth * ROW + BOTTOM;
  const body = boxes.map((b) => {
    const y = TOP + (depth - 1 - b.depth) * ROW;
    const label = `${b.name}: ${(b.share * 100).toFixed(1)}%`;
    const fits = Math.floor((b.width - 4) / CHAR_PX);
    const text = fits >= 3 ? `<text x="${(b.x + 2).toFixed(1)}" y="${y + ROW - 5}">${escapeXml(b.name.length > fits ? b.name.slice(0, fits - 1) + "…" : b.name)}</text>` : "";
    return `<g><title>${escapeXml(label)}</title><rect x="${b.x.toFixed(1)}" y="${y}" width="${b.width.toFixed(1)}" height="${ROW - 1}" fill="${colour(b.name)}"/>${text}</g>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="monospace" font-size="11">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="4" y="20" font-size="14" font-family="sans-serif">${escapeXml(title)}</text>`,
    ...body,
    "</svg>",
    "",
  ].join("\n");
}
