// The agent's configuration: a JSON file (every field optional) merged over
// defaults, then command-line flags over both. Validation names the field,
// what it expected, what it found, and so what to change.
import { parseAddress } from "../src/link/transport/address.js";
import { DEFAULT_APP_SOCKET } from "./app/protocol.js";
import { AnswerName, isAnswerName, Perm } from "./handlers/handler.js";
import { isLogLevel, LogLevel } from "./log.js";

export const DEFAULT_PORT_NAME = "org.iopf-relay.0";

export interface PortConfig {
  /** The virtio-serial port's name, looked up under <sysfsRoot>/class/virtio-ports. */
  name: string;
  /** A device path to open instead of looking the name up. */
  path: string | null;
  /** A unix:, tcp: or ws: address to connect to instead of a port (tests, containers). */
  connect: string | null;
  sysfsRoot: string;
  /** Where the kernel's devtmpfs puts vportNpM (no udev needed). */
  devRoot: string;
}

/** Which groups a rule takes: any endpoint or PASID when the field is absent. */
export interface RuleMatch {
  endpoint?: number;
  /** A PASID, or "none" for groups that carry no PASID. */
  pasid?: number | "none";
}

export interface PolicyRule {
  start: number;
  /** Exclusive. */
  end: number;
  /** Permissions this rule covers (Perm bits); a page matches when it asks for no more. */
  perm: number;
  answer: AnswerName;
}

export type HandlerRule = RuleMatch &
  (
    | { handler: "procmem"; pid: number | null; writes: "procmem" | "app" }
    | { handler: "app" }
    | { handler: "policy"; rules: PolicyRule[]; otherwise: AnswerName }
    | { handler: "invalid" }
  );

export interface AgentConfig {
  port: PortConfig;
  /** The credit window granted at each session start (clamped to max_in_flight). */
  credits: number;
  /** Most groups the agent will ever hold: the max_in_flight it answers the relay's Hello with. */
  maxInFlight: number;
  /** Accept the relay's raw vIOMMU records (FEATURE_RAW_RECORDS); no built-in handler reads them, and they cost the relay encoding time. */
  rawRecords: boolean;
  logLevel: LogLevel;
  /** Unix socket for guest programs (app handler, procmem registration); null disables it. */
  appSocket: string | null;
  /** Budget of a request whose budget_us is 0 (the relay did not say). */
  defaultBudgetUs: number;
  /** A handler's answer is due this long before the budget ends, so it reaches the relay in time. */
  deadlineMarginUs: number;
  /** First rule matching a group's (endpoint, PASID) picks its handler; none matching means INVALID. */
  handlers: HandlerRule[];
  /** Backoff while the port is missing or the relay unreachable. */
  retryMinMs: number;
  retryMaxMs: number;
}

export function defaultConfig(): AgentConfig {
  return {
    port: { name: DEFAULT_PORT_NAME, path: null, connect: null, sysfsRoot: "/sys", devRoot: "/dev" },
    credits: 256,
    maxInFlight: 4096,
    rawRecords: false,
    logLevel: "info",
    appSocket: DEFAULT_APP_SOCKET,
    defaultBudgetUs: 100_000,
    deadlineMarginUs: 500,
    // Serve whatever guest programs register; everything else is INVALID.
    handlers: [{ handler: "app" }, { handler: "procmem", pid: null, writes: "procmem" }],
    retryMinMs: 100,
    retryMaxMs: 5000,
  };
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Json = Record<string, unknown>;

function describe(v: unknown): string {
  return v === undefined ? "nothing" : JSON.stringify(v);
}

function bad(where: string, expected: string, got: unknown): never {
  throw new ConfigError(`${where}: expected ${expected}, found ${describe(got)}`);
}

function object(v: unknown, where: string): Json {
  if (typeof v !== "object" || v === null || Array.isArray(v)) bad(where, "an object", v);
  return v as Json;
}

function onlyKeys(o: Json, where: string, allowed: string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new ConfigError(`${where}: unknown field "${k}"; the fields are ${allowed.join(", ")}`);
  }
}

function uint(v: unknown, where: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) bad(where, `an integer in ${min}..${max}`, v);
  return v;
}

/** Addresses may be written as numbers or as "0x..." strings (JSON has no hex). */
function address(v: unknown, where: string): number {
  if (typeof v === "string" && /^0x[0-9a-f]+$/i.test(v)) {
    const n = Number(BigInt(v));
    if (n <= Number.MAX_SAFE_INTEGER) return n;
  }
  if (typeof v === "number") return uint(v, where);
  return bad(where, `an address below 2^53 as a number or a "0x..." string`, v);
}

function str(v: unknown, where: string): string {
  if (typeof v !== "string" || v.length === 0) bad(where, "a non-empty string", v);
  return v;
}

function answer(v: unknown, where: string): AnswerName {
  if (!isAnswerName(v)) bad(where, `"success", "invalid" or "failure"`, v);
  return v;
}

export function parsePerm(v: unknown, where: string): number {
  if (typeof v !== "string" || !/^[rwx]*$/.test(v)) bad(where, `permission letters from "rwx", such as "rw"`, v);
  return (v.includes("r") ? Perm.READ : 0) | (v.includes("w") ? Perm.WRITE : 0) | (v.includes("x") ? Perm.EXEC : 0);
}

function policyRule(v: unknown, where: string): PolicyRule {
  const o = object(v, where);
  onlyKeys(o, where, ["start", "end", "perm", "answer"]);
  const start = address(o.start, `${where}.start`);
  const end = address(o.end, `${where}.end`);
  if (end <= start) throw new ConfigError(`${where}: end ${describe(o.end)} must be above start ${describe(o.start)} (the range is [start, end))`);
  return { start, end, perm: parsePerm(o.perm ?? "rwx", `${where}.perm`), answer: answer(o.answer, `${where}.answer`) };
}

function handlerRule(v: unknown, where: string): HandlerRule {
  const o = object(v, where);
  const match: RuleMatch = {};
  if (o.endpoint !== undefined) match.endpoint = uint(o.endpoint, `${where}.endpoint`, 0, 0xffff_ffff);
  if (o.pasid !== undefined) match.pasid = o.pasid === "none" ? "none" : uint(o.pasid, `${where}.pasid`, 0, 0xf_ffff);
  const common = ["handler", "endpoint", "pasid"];
  switch (o.handler) {
    case "procmem": {
      onlyKeys(o, where, [...common, "pid", "writes"]);
      const writes = o.writes ?? "procmem";
      if (writes !== "procmem" && writes !== "app") bad(`${where}.writes`, `"procmem" or "app"`, writes);
      return { ...match, handler: "procmem", pid: o.pid === undefined ? null : uint(o.pid, `${where}.pid`, 1), writes };
    }
    case "app":
      onlyKeys(o, where, common);
      return { ...match, handler: "app" };
    case "policy": {
      onlyKeys(o, where, [...common, "rules", "otherwise"]);
      if (!Array.isArray(o.rules)) bad(`${where}.rules`, "an array of {start, end, perm, answer}", o.rules);
      const rules = o.rules.map((r, i) => policyRule(r, `${where}.rules[${i}]`));
      return { ...match, handler: "policy", rules, otherwise: answer(o.otherwise ?? "invalid", `${where}.otherwise`) };
    }
    case "invalid":
      onlyKeys(o, where, common);
      return { ...match, handler: "invalid" };
    default:
      return bad(`${where}.handler`, `"procmem", "app", "policy" or "invalid"`, o.handler);
  }
}

/** Throws a ConfigError unless text is a transport address (unix:, tcp:, ws://, chardev:). */
export function checkAddress(text: string, where: string): void {
  try {
    parseAddress(text);
  } catch (err) {
    throw new ConfigError(`${where}: ${(err as Error).message}`);
  }
}

function nullableStr(v: unknown, where: string): string | null {
  return v === null ? null : str(v, where);
}

/** Merges a parsed JSON config file over the defaults. */
export function parseConfig(json: unknown, where = "config"): AgentConfig {
  const c = defaultConfig();
  const o = object(json, where);
  onlyKeys(o, where, ["port", "credits", "maxInFlight", "rawRecords", "logLevel", "appSocket", "defaultBudgetUs", "deadlineMarginUs", "handlers", "retryMinMs", "retryMaxMs"]);
  if (o.port !== undefined) {
    const p = object(o.port, `${where}.port`);
    onlyKeys(p, `${where}.port`, ["name", "path", "connect", "sysfsRoot", "devRoot"]);
    if (p.name !== undefined) c.port.name = str(p.name, `${where}.port.name`);
    if (p.path !== undefined) c.port.path = nullableStr(p.path, `${where}.port.path`);
    if (p.connect !== undefined) c.port.connect = nullableStr(p.connect, `${where}.port.connect`);
    if (c.port.connect !== null) checkAddress(c.port.connect, `${where}.port.connect`);
    if (p.sysfsRoot !== undefined) c.port.sysfsRoot = str(p.sysfsRoot, `${where}.port.sysfsRoot`);
    if (p.devRoot !== undefined) c.port.devRoot = str(p.devRoot, `${where}.port.devRoot`);
  }
  if (o.credits !== undefined) c.credits = uint(o.credits, `${where}.credits`, 1);
  if (o.maxInFlight !== undefined) c.maxInFlight = uint(o.maxInFlight, `${where}.maxInFlight`, 1);
  if (o.rawRecords !== undefined) {
    if (typeof o.rawRecords !== "boolean") bad(`${where}.rawRecords`, "true or false", o.rawRecords);
    c.rawRecords = o.rawRecords;
  }
  if (o.logLevel !== undefined) {
    if (typeof o.logLevel !== "string" || !isLogLevel(o.logLevel)) bad(`${where}.logLevel`, `"error", "warn", "info" or "debug"`, o.logLevel);
    c.logLevel = o.logLevel;
  }
  // "none", as on the command line (--app-socket none), or null: no app socket.
  if (o.appSocket !== undefined) c.appSocket = o.appSocket === "none" ? null : nullableStr(o.appSocket, `${where}.appSocket`);
  if (o.defaultBudgetUs !== undefined) c.defaultBudgetUs = uint(o.defaultBudgetUs, `${where}.defaultBudgetUs`, 1);
  if (o.deadlineMarginUs !== undefined) c.deadlineMarginUs = uint(o.deadlineMarginUs, `${where}.deadlineMarginUs`);
  if (o.retryMinMs !== undefined) c.retryMinMs = uint(o.retryMinMs, `${where}.retryMinMs`, 1);
  if (o.retryMaxMs !== undefined) c.retryMaxMs = uint(o.retryMaxMs, `${where}.retryMaxMs`, c.retryMinMs);
  if (o.handlers !== undefined) {
    if (!Array.isArray(o.handlers)) bad(`${where}.handlers`, "an array of handler rules", o.handlers);
    c.handlers = o.handlers.map((h, i) => handlerRule(h, `${where}.handlers[${i}]`));
  }
  return c;
}
