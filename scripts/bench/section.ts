// What every section of the benchmark hands to the report: tables already
// formatted, the charts it wrote, notes, and its raw figures for the JSON.
import { loadavg } from "node:os";

export interface Table {
  caption: string;
  columns: string[];
  rows: string[][];
}

export interface SectionResult {
  id: string;
  title: string;
  /** How the section measures, in a sentence or two. */
  method: string;
  /** The 1-minute load average when the section started: the machine is shared. */
  loadAverage: number;
  tables: Table[];
  /** File names under docs/img/. */
  charts: string[];
  notes: string[];
  data: unknown;
}

export interface BenchContext {
  quick: boolean;
  /** How long one measured load runs. */
  loadMs: number;
  warmUpMs: number;
  soakMs: number;
  /** Writes an SVG chart under docs/img/ and returns its file name. */
  chart(name: string, svg: string): string;
  profileDir: string;
  progress(message: string): void;
}

export function loadNow(): number {
  return Math.round(loadavg()[0]! * 100) / 100;
}

/** A figure for a table: 3 significant digits, thousands as k / M; "n/a" for null or NaN. */
export function num(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "n/a";
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

/** A ratio for a table: "2.31x"; "n/a" when there is no baseline. */
export function times(r: number | null): string {
  return r === null || !Number.isFinite(r) ? "n/a" : `${r.toPrecision(3)}x`;
}
