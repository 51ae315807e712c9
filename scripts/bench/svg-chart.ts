// Two chart kinds for the performance page, written as plain SVG (no chart
// library: the page must render on GitHub and in any browser, and the
// benchmark adds no dependency): grouped bars, and lines over an x axis.
// Both take a linear or a log10 y axis; latencies span decades.

export interface Series {
  name: string;
  values: number[];
}

export interface ChartSpec {
  title: string;
  yLabel: string;
  /** Category names (bars) or x positions' labels (lines), one per value of each series. */
  categories: string[];
  series: Series[];
  log?: boolean;
}

const W = 720, H = 360, LEFT = 70, RIGHT = 160, TOP = 40, BOTTOM = 50;
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

export function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function fmt(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

interface Scale {
  y(v: number): number;
  ticks: number[];
}

/** The y scale over the finite positive (log) or finite (linear) values; non-finite values are not drawn. */
export function yScale(values: number[], log: boolean): Scale {
  const ok = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  const plotH = H - TOP - BOTTOM;
  if (log) {
    const lo = Math.floor(Math.log10(Math.min(...ok, 1))), hi = Math.ceil(Math.log10(Math.max(...ok, 10)));
    const span = Math.max(1, hi - lo);
    const ticks = Array.from({ length: span + 1 }, (_, i) => 10 ** (lo + i));
    return { y: (v) => TOP + plotH * (1 - (Math.log10(v) - lo) / span), ticks };
  }
  const max = Math.max(...ok, 0) || 1;
  const step = 10 ** Math.floor(Math.log10(max / 4));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => max / s <= 6) ?? step * 10;
  const top = Math.ceil(max / nice) * nice;
  const ticks = Array.from({ length: Math.round(top / nice) + 1 }, (_, i) => i * nice);
  return { y: (v) => TOP + plotH * (1 - v / top), ticks };
}

function frame(spec: ChartSpec, scale: Scale, body: string[]): string {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(spec.title)}</text>`,
    `<text transform="translate(16 ${(TOP + H - BOTTOM) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(spec.yLabel)}</text>`,
  ];
  for (const t of scale.ticks) {
    const y = scale.y(t).toFixed(1);
    out.push(`<line x1="${LEFT}" x2="${W - RIGHT}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${LEFT - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`);
  }
  out.push(...body);
  out.push(`<line x1="${LEFT}" x2="${LEFT}" y1="${TOP}" y2="${H - BOTTOM}" stroke="black"/>`);
  out.push(`<line x1="${LEFT}" x2="${W - RIGHT}" y1="${H - BOTTOM}" y2="${H - BOTTOM}" stroke="black"/>`);
  spec.series.forEach((s, i) => {
    const y = TOP + 10 + i * 20;
    out.push(`<rect x="${W - RIGHT + 14}" y="${y - 6}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${W - RIGHT + 32}" y="${y}" dominant-baseline="middle">${escapeXml(s.name)}</text>`);
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

function checkShape(spec: ChartSpec): void {
  for (const s of spec.series) {
    if (s.values.length !== spec.categories.length) {
      throw new Error(`chart "${spec.title}": series "${s.name}" has ${s.values.length} values, expected one per category (${spec.categories.length})`);
    }
  }
}

export function barChart(spec: ChartSpec): string {
  checkShape(spec);
  const log = spec.log ?? false;
  const scale = yScale(spec.series.flatMap((s) => s.values), log);
  const slot = (W - LEFT - RIGHT) / spec.categories.length;
  const bar = (slot * 0.8) / Math.max(1, spec.series.length);
  const base = H - BOTTOM;
  const body: string[] = [];
  spec.categories.forEach((c, ci) => {
    const x0 = LEFT + ci * slot + slot * 0.1;
    body.push(`<text x="${(LEFT + (ci + 0.5) * slot).toFixed(1)}" y="${base + 18}" text-anchor="middle">${escapeXml(c)}</text>`);
    spec.series.forEach((s, si) => {
      const v = s.values[ci]!;
      if (!Number.isFinite(v) || (log && v <= 0)) return;
      const y = Math.min(base, scale.y(v));
      body.push(`<rect x="${(x0 + si * bar).toFixed(1)}" y="${y.toFixed(1)}" width="${(bar * 0.9).toFixed(1)}" height="${(base - y).toFixed(1)}" fill="${COLORS[si % COLORS.length]}"><title>${escapeXml(`${s.name}, ${c}: ${fmt(v)}`)}</title></rect>`);
    });
  });
  return frame(spec, scale, body);
}

export function lineChart(spec: ChartSpec): string {
  checkShape(spec);
  const log = spec.log ?? false;
  const scale = yScale(spec.series.flatMap((s) => s.values), log);
  const n = spec.categories.length;
  const x = (i: number): number => LEFT + 10 + (n > 1 ? (i * (W - LEFT - RIGHT - 20)) / (n - 1) : 0);
  const every = Math.max(1, Math.ceil(n / 12));
  const body: string[] = [];
  spec.categories.forEach((c, i) => {
    if (i % every === 0) body.push(`<text x="${x(i).toFixed(1)}" y="${H - BOTTOM + 18}" text-anchor="middle">${escapeXml(c)}</text>`);
  });
  spec.series.forEach((s, si) => {
    const pts = s.values.map((v, i) => (Number.isFinite(v) && (!log || v > 0) ? `${x(i).toFixed(1)},${scale.y(v).toFixed(1)}` : null)).filter((p) => p !== null);
    const color = COLORS[si % COLORS.length];
    body.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(" ")}"/>`);
    if (n <= 12) for (const p of pts) body.push(`<circle cx="${p!.split(",")[0]}" cy="${p!.split(",")[1]}" r="3" fill="${color}"/>`);
  });
  return frame(spec, scale, body);
}
