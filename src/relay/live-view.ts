// The live view of `npm start`: what flowed in the last second and in total.
// On a terminal it redraws a block in place; otherwise it prints one line a
// second, so logs and CI output stay readable.
import { RelayMetrics } from "./relay-metrics.js";

export interface LiveFrame {
  elapsedS: number;
  metrics: RelayMetrics;
  inFlight: number;
  queued: number;
  session: string;
  emulator: { delivered: number; outstanding: number; violations: number } | null;
}

interface Totals {
  records: number;
  groups: number;
  answers: number;
}

function answersBy(m: RelayMetrics): string {
  const parts: string[] = [];
  for (const [origin, c] of [...m.answers].sort()) parts.push(`${origin} ${c.success}/${c.invalid}`);
  return parts.length > 0 ? parts.join(", ") : "none yet";
}

function ms(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us} us`;
}

export class LiveView {
  private last: Totals = { records: 0, groups: 0, answers: 0 };
  private drawnLines = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly header: string,
  ) {}

  render(f: LiveFrame): void {
    const m = f.metrics;
    const now: Totals = { records: m.records, groups: m.groups, answers: m.totalAnswers() };
    const last = this.last;
    const rate = (k: keyof Totals): number => now[k] - last[k];
    this.last = now;
    const dropped = m.totalDropped();
    const lines = [
      this.header,
      `  ${f.elapsedS.toFixed(0).padStart(4)} s   session ${f.session}   in flight ${f.inFlight} (queued ${f.queued})   credit window ${m.creditWindow}`,
      `  faults read    ${String(now.records).padStart(9)}   ${String(rate("records")).padStart(7)}/s`,
      `  groups         ${String(now.groups).padStart(9)}   ${String(rate("groups")).padStart(7)}/s   sent to the agent ${m.groupsSent}`,
      `  answers        ${String(now.answers).padStart(9)}   ${String(rate("answers")).padStart(7)}/s   by origin (success/invalid): ${answersBy(m)}`,
      `  deadlines hit  ${String(m.answers.get("deadline")?.invalid ?? 0).padStart(9)}   dropped guest answers ${dropped}${dropped > 0 ? ` ${JSON.stringify(Object.fromEntries(m.dropped))}` : ""}   refused by the source ${m.refused}`,
      `  latency        read to answer p50 ${ms(m.latency.quantile(0.5))}, p99 ${ms(m.latency.quantile(0.99))}; guest path p50 ${ms(m.guestLatency.quantile(0.5))}, p99 ${ms(m.guestLatency.quantile(0.99))}`,
      ...(f.emulator ? [`  kernel emulator: delivered ${f.emulator.delivered}, waiting for an answer ${f.emulator.outstanding}, contract violations ${f.emulator.violations}`] : []),
    ];
    if (this.out.isTTY) {
      if (this.drawnLines > 0) this.out.write(`\x1b[${this.drawnLines}A`);
      for (const l of lines) this.out.write(`\x1b[2K${l}\n`);
      this.drawnLines = lines.length;
    } else {
      this.out.write(lines.slice(1).map((l) => l.trim()).join(" | ") + "\n");
    }
  }
}
