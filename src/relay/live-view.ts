// The live view of `npm start`: what flowed in the last second and in total.
// On a terminal it redraws a block in place, laid out for the terminal's
// width: a line longer than the terminal would wrap, and the redraw, which
// moves the cursor up by the lines it drew, would then climb too few and
// garble the screen. Piped, it prints what the columns mean once, then one
// line a second, so logs and CI output stay readable.
import type { CoreView } from "./control/relay-view.js";
import { RECENT_WINDOW_S } from "./latency-histogram.js";

/** One second's figures, copied from the relay at one instant (the metrics themselves keep moving). */
export interface LiveFrame {
  elapsedS: number;
  session: string;
  inFlight: number;
  queued: number;
  creditWindow: number;
  records: number;
  groups: number;
  groupsSent: number;
  /** Answers by origin, by code. */
  answers: [string, { success: number; invalid: number }][];
  dropped: [string, number][];
  refused: number;
  /** Over the last RECENT_WINDOW_S seconds. */
  latencyUs: { p50: number; p99: number };
  guestLatencyUs: { p50: number; p99: number };
  /** The kernel emulator's counters, read after the relay's; null without one. */
  emulator: { delivered: number; outstanding: number; violations: number } | null;
}

/** The relay's figures now, for a frame; the caller adds the emulator's, read after these. */
export function relayFrame(core: Omit<CoreView, "events">, elapsedS: number): Omit<LiveFrame, "emulator"> {
  const m = core.metrics;
  const session = core.currentSession;
  const recent = m.latency.recent.snapshot();
  const guest = m.guestLatency.recent.snapshot();
  return {
    elapsedS,
    session: session ? `up (epoch ${session.epoch})` : m.sessionState,
    inFlight: core.inFlight,
    queued: core.queued,
    creditWindow: m.creditWindow,
    records: m.records,
    groups: m.groups,
    groupsSent: m.groupsSent,
    answers: [...m.answers].map(([origin, c]) => [origin, { ...c }]),
    dropped: [...m.dropped],
    refused: m.refused,
    latencyUs: { p50: recent.quantile(0.5), p99: recent.quantile(0.99) },
    guestLatencyUs: { p50: guest.quantile(0.5), p99: guest.quantile(0.99) },
  };
}

export interface LiveViewText {
  /** The first line: what runs. */
  title: string;
  /** Sentences under it that explain what the figures will show (e.g. answers INVALID on purpose). */
  notes: string[];
}

/** Where the view writes: a terminal (isTTY, columns) or anything else. */
export type LiveOutput = Pick<NodeJS.WriteStream, "write"> & { isTTY?: boolean; columns?: number };

interface Totals {
  records: number;
  groups: number;
  answers: number;
}

const DEFAULT_COLUMNS = 80;
const INDENT = "  ";
/** Where a row's figures start, after its label. */
const LABEL = 16;

function deadlines(f: LiveFrame): number {
  const c = f.answers.find(([origin]) => origin === "deadline")?.[1];
  return c ? c.success + c.invalid : 0;
}

function ms(us: number): string {
  return us >= 1e6 ? `${(us / 1e6).toFixed(2)} s` : us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us} us`;
}

/** Answers by origin, e.g. "guest 75 success + 25 INVALID". */
export function originParts(answers: Iterable<[string, { success: number; invalid: number }]>): string[] {
  return [...answers].sort(([a], [b]) => a.localeCompare(b)).map(([origin, c]) => {
    const codes = [c.success > 0 ? `${c.success} success` : "", c.invalid > 0 ? `${c.invalid} INVALID` : ""].filter(Boolean);
    return `${origin} ${codes.join(" + ") || "0"}`;
  });
}

/**
 * Packs parts, separated by sep, into lines of at most width characters;
 * the first line starts with head, the others with as many spaces. A part
 * longer than a line is cut.
 */
export function flow(head: string, parts: string[], sep: string, width: number): string[] {
  const pad = " ".repeat(head.length);
  const lines: string[] = [];
  let line = head;
  let empty = true;
  for (const part of parts) {
    const candidate = empty ? line + part : line + sep + part;
    // Room for the separator that ends a line when the next part moves down.
    if (candidate.length + sep.trimEnd().length <= width || empty) {
      line = candidate;
      empty = false;
      continue;
    }
    lines.push(line + sep.trimEnd());
    line = pad + part;
  }
  lines.push(line);
  return lines.map((l) => clip(l, width));
}

function clip(line: string, width: number): string {
  return line.length <= width ? line : line.slice(0, Math.max(0, width - 1)) + "~";
}

export class LiveView {
  private last: Totals = { records: 0, groups: 0, answers: 0 };
  private drawnLines = 0;
  private headerPrinted = false;

  constructor(
    private readonly out: LiveOutput,
    private readonly text: LiveViewText,
  ) {}

  render(f: LiveFrame): void {
    const now: Totals = { records: f.records, groups: f.groups, answers: f.answers.reduce((n, [, c]) => n + c.success + c.invalid, 0) };
    const last = this.last;
    const perS = (k: keyof Totals): number => now[k] - last[k];
    this.last = now;
    if (this.out.isTTY) this.draw(this.block(f, now, perS));
    else this.line(f, now, perS);
  }

  /** The terminal's block, every line shorter than the terminal is wide. */
  private block(f: LiveFrame, now: Totals, perS: (k: keyof Totals) => number): string[] {
    // One column short of the edge: a line that fills the last column leaves some terminals' cursor on the next line.
    const width = Math.max(20, (this.out.columns || DEFAULT_COLUMNS) - 1);
    const row = (label: string, k: keyof Totals): string => `${INDENT}${label.padEnd(LABEL)}${String(now[k]).padStart(9)} ${String(perS(k)).padStart(7)}/s`;
    const dropped = f.dropped.reduce((n, [, c]) => n + c, 0);
    const lines = [
      ...flow("", this.text.title.split(" "), " ", width),
      ...this.text.notes.flatMap((n) => flow(INDENT, n.split(" "), " ", width)),
      "",
      ...flow(INDENT, [`${f.elapsedS.toFixed(0)} s`, `session ${f.session}`, `in flight ${f.inFlight} (queued ${f.queued})`, `window ${f.creditWindow}`], "  ", width),
      row("faults read", "records"),
      `${row("groups", "groups")}   ${f.groupsSent} sent to the agent`,
      row("answers", "answers"),
      ...flow(`${INDENT}${"".padEnd(LABEL)}by `, f.answers.length > 0 ? originParts(f.answers) : ["nobody yet"], ", ", width),
      `${INDENT}${"deadlines hit".padEnd(LABEL)}${String(deadlines(f)).padStart(9)}   refused by the source ${f.refused}`,
      ...flow(`${INDENT}${"dropped".padEnd(LABEL)}`, [`${dropped} guest answers`, ...f.dropped.map(([r, n]) => `${r} ${n}`)], ", ", width),
      `${INDENT}${"latency".padEnd(LABEL)}p50 ${ms(f.latencyUs.p50)}, p99 ${ms(f.latencyUs.p99)} from read to answer (last ${RECENT_WINDOW_S} s)`,
      `${INDENT}${"".padEnd(LABEL)}p50 ${ms(f.guestLatencyUs.p50)}, p99 ${ms(f.guestLatencyUs.p99)} of guest answers`,
      ...(f.emulator ? flow(`${INDENT}${"kernel emulator".padEnd(LABEL)}`, [`delivered ${f.emulator.delivered}`, `unanswered ${f.emulator.outstanding}`, `contract violations ${f.emulator.violations}`], ", ", width) : []),
    ];
    return lines.map((l) => clip(l, width));
  }

  private draw(lines: string[]): void {
    // Up to the block's first line, clear from there down, draw it again.
    let s = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A\r\x1b[J` : "";
    for (const l of lines) s += `${l}\n`;
    this.out.write(s);
    this.drawnLines = lines.length;
  }

  private line(f: LiveFrame, now: Totals, perS: (k: keyof Totals) => number): void {
    if (!this.headerPrinted) {
      this.headerPrinted = true;
      this.out.write([
        this.text.title,
        ...this.text.notes,
        `One line a second: seconds | session | groups in flight (queued) | total and per second of faults read, groups read, answers (by origin) | deadlines | dropped guest answers | refused | latency p50/p99 over the last ${RECENT_WINDOW_S} s | the kernel emulator's counters`,
        "",
      ].join("\n"));
    }
    const dropped = f.dropped.reduce((n, [, c]) => n + c, 0);
    const fields = [
      `${f.elapsedS.toFixed(0)} s`,
      `session ${f.session}`,
      `in flight ${f.inFlight} (queued ${f.queued})`,
      `faults ${now.records} (${perS("records")}/s)`,
      `groups ${now.groups} (${perS("groups")}/s)`,
      `answers ${now.answers} (${perS("answers")}/s; ${originParts(f.answers).join(", ") || "none yet"})`,
      `deadlines ${deadlines(f)}`,
      `dropped ${dropped}${dropped > 0 ? ` (${f.dropped.map(([r, n]) => `${r} ${n}`).join(", ")})` : ""}`,
      `refused ${f.refused}`,
      `latency p50 ${ms(f.latencyUs.p50)} p99 ${ms(f.latencyUs.p99)}`,
      ...(f.emulator ? [`emulator delivered ${f.emulator.delivered}, waiting ${f.emulator.outstanding}, violations ${f.emulator.violations}`] : []),
    ];
    this.out.write(fields.join(" | ") + "\n");
  }
}
