// The command line of `npm start` (build/src/cli/demo.js): two numbers and
// --help, each checked, a bad one being a usage error of one line.
import { parseFlags, UsageError } from "./cli-options.js";

export const DEMO_USAGE = `usage: npm start -- [--rate N] [--seconds N]
       node build/src/cli/demo.js [--rate N] [--seconds N]

Runs iopf-relay on the built-in kernel emulator with the guest agent beside it
on a Unix socket, and shows what flows between them, refreshed every second.
Ctrl-C stops all of it after every fault group read has been answered.

  --rate N       fault groups per second the emulator raises (default 2000)
  --seconds N    stop by itself after N seconds (default: run until Ctrl-C)
  --help         this text`;

export const DEFAULT_DEMO_RATE = 2000;

export type DemoOptions = { help: true } | { help: false; rate: number; seconds: number };

function positiveInteger(flag: string, text: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${flag}: expected a whole number above 0, got "${text}"`);
  return n;
}

export function parseDemoArgs(argv: string[]): DemoOptions {
  const values = parseFlags(argv, { rate: { type: "string" }, seconds: { type: "string" }, help: { type: "boolean", short: "h" } });
  if (values.help) return { help: true };
  return {
    help: false,
    rate: values.rate === undefined ? DEFAULT_DEMO_RATE : positiveInteger("rate", values.rate),
    seconds: values.seconds === undefined ? Infinity : positiveInteger("seconds", values.seconds),
  };
}
