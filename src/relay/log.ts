// Logs as JSON lines on stderr, or as readable lines when stderr is a
// terminal: one event per line, the message first, then its fields. A
// line never carries a raw control character, whatever a field holds (JSON
// escapes them; the text form escapes them as peerText does), so no value
// can forge a line or drive the terminal.
import { peerText } from "../link/peer-text.js";
export type LogFormat = "json" | "text";
export type LogLevel = "debug" | "info" | "warn" | "error";
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  (msg: string, fields?: object): void;
  level(level: LogLevel, msg: string, fields?: object): void;
}

/** Escapes control characters; the length is bounded where the text comes in, not here. */
function safe(s: string): string {
  return peerText(s, Infinity);
}

export function createLogger(component: string, format: LogFormat = process.stderr.isTTY ? "text" : "json", min: LogLevel = "info", out: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const emit = (level: LogLevel, msg: string, fields?: object): void => {
    if (RANK[level] < RANK[min]) return;
    if (format === "json") {
      out(JSON.stringify({ time: new Date().toISOString(), level, component, msg, ...fields }) + "\n");
      return;
    }
    const extra = fields ? Object.entries(fields).map(([k, v]) => `${k}=${typeof v === "string" ? safe(v) : JSON.stringify(v)}`).join(" ") : "";
    out(`${new Date().toISOString().slice(11, 23)} ${level.padEnd(5)} ${component}: ${safe(msg)}${extra ? `  ${extra}` : ""}\n`);
  };
  const log = ((msg: string, fields?: object) => emit("info", msg, fields)) as Logger;
  log.level = emit;
  return log;
}
