// iopfctl's command line: a command word, then its options; every option
// is checked against the command that takes it, and every number against
// its range, with the message saying what was expected and what came.
import { parseArgs } from "node:util";
import { DEFAULT_CONTROL } from "../relay/control/control-address.js";
import { MAX_INJECT, MAX_INJECT_PAGES } from "../relay/control/inject-limits.js";
import { EVENT_KINDS, EventFilter, WireKind } from "../relay/control/wire-event.js";
import { parsePerm } from "./inject-command.js";

export const USAGE = `usage: iopfctl [--control ADDR] COMMAND [options]

Commands:
  status                     the relay at a glance (--json: the raw /api/status)
  trace                      live events, one line each, until Ctrl-C
                             [--dev N] [--pasid N] [--kind K] (repeatable or comma lists) [--json] [--count N]
  top                        per-device rates, refreshed [--interval SECONDS] [--iterations N] [--plain]
  inject --dev N             raise fault groups in a relay running --source synthetic (or --emulator: its kernel emulator)
                             [--pasid N] [--addr A] [--perm rwxp|N] [--count N] [--pages N] [--emulator]
  record FILE                events to a JSON-lines file [trace filters] [--count N] [--duration SECONDS]
  replay FILE                a recording's group-read events raised again in time order, via inject
                             [--emulator] [--speed X] [--addr A] [--perm rwxp|N]
  attach --fault-fd N --fault-id ID --devices JSON
                             hand an inherited fault fd over to a relay's handoff socket (docs/handoff.md)
                             [--viommu MODEL] [--vmm-pid PID] [--emulator] --handoff unix:PATH
  detach --fault-id ID       take it back: the relay answers what it holds of it, then the VMM may detach
                             [--dev N]... --handoff unix:PATH (or $IOPFCTL_HANDOFF)

  --version                  print iopfctl's version and exit
  --control ADDR             the relay's control server: tcp:127.0.0.1:PORT or unix:PATH
                             (default $IOPFCTL_CONTROL, else ${DEFAULT_CONTROL})
  Kinds: ${EVENT_KINDS.join(", ")}`;

export class CtlUsageError extends Error {
  override readonly name = "CtlUsageError";
}

export type CtlCommand =
  | { cmd: "help" }
  | { cmd: "version" }
  | { cmd: "status"; json: boolean }
  | { cmd: "trace"; filter: EventFilter; json: boolean; count: number }
  | { cmd: "top"; intervalMs: number; iterations: number; plain: boolean }
  | { cmd: "inject"; dev: number; pasid?: number; addr: number; perm: number; count: number; pages: number; emulator: boolean }
  | { cmd: "record"; file: string; filter: EventFilter; count: number; durationMs: number }
  | { cmd: "replay"; file: string; emulator: boolean; speed: number; addr: number; perm: number }
  | { cmd: "attach"; handoff: string; faultFd: number; faultId: number; devices: unknown[]; viommu: string | null; vmmPid: number | null; emulator: boolean }
  | { cmd: "detach"; handoff: string; faultId: number; devIds: number[] | null };

const OPTIONS = {
  control: { type: "string" }, json: { type: "boolean" }, dev: { type: "string", multiple: true }, pasid: { type: "string", multiple: true },
  kind: { type: "string", multiple: true }, count: { type: "string" }, interval: { type: "string" }, iterations: { type: "string" },
  plain: { type: "boolean" }, addr: { type: "string" }, perm: { type: "string" }, pages: { type: "string" }, emulator: { type: "boolean" },
  duration: { type: "string" }, speed: { type: "string" }, help: { type: "boolean", short: "h" }, version: { type: "boolean" },
  "fault-fd": { type: "string" }, "fault-id": { type: "string" }, devices: { type: "string" }, viommu: { type: "string" }, handoff: { type: "string" },
  "vmm-pid": { type: "string" },
} as const;

const ALLOWED: Record<string, string[]> = {
  status: ["json"],
  trace: ["dev", "pasid", "kind", "json", "count"],
  top: ["interval", "iterations", "plain"],
  inject: ["dev", "pasid", "addr", "perm", "count", "pages", "emulator"],
  record: ["dev", "pasid", "kind", "count", "duration"],
  replay: ["emulator", "speed", "addr", "perm"],
  attach: ["fault-fd", "fault-id", "devices", "viommu", "vmm-pid", "emulator", "handoff"],
  detach: ["fault-id", "dev", "handoff"],
};

function integer(flag: string, text: string, min: number, max: number): number {
  const n = /^0x[0-9a-f]+$/i.test(text) || /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new CtlUsageError(`--${flag}: expected an integer ${min}..${max} (decimal or 0x hex), got "${text}"`);
  return n;
}

function positive(flag: string, text: string): number {
  const n = Number(text);
  if (!(n > 0) || !Number.isFinite(n)) throw new CtlUsageError(`--${flag}: expected a positive number, got "${text}"`);
  return n;
}

function list(values: string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v !== "");
}

function filterOf(v: { dev?: string[]; pasid?: string[]; kind?: string[] }): EventFilter {
  const filter: EventFilter = {};
  const devs = list(v.dev).map((t) => integer("dev", t, 0, 0xffff_ffff));
  const pasids = list(v.pasid).map((t) => integer("pasid", t, 0, 0xfffff));
  const kinds = list(v.kind);
  for (const k of kinds) if (!(EVENT_KINDS as readonly string[]).includes(k)) throw new CtlUsageError(`--kind: expected one of ${EVENT_KINDS.join(", ")}, got "${k}"`);
  if (devs.length) filter.dev = devs;
  if (pasids.length) filter.pasid = pasids;
  if (kinds.length) filter.kind = kinds as WireKind[];
  return filter;
}

function perm(text: string | undefined): number {
  if (text === undefined) return 1;
  const p = parsePerm(text);
  if (p === null) throw new CtlUsageError(`--perm: expected letters of rwxp (read, write, exec, privileged) or a number 0..15, got "${text}"`);
  return p;
}

export function parseCtlCli(argv: string[], env: NodeJS.ProcessEnv): { control: string; command: CtlCommand } {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CtlUsageError((err as Error).message);
  }
  const { values: v, positionals } = parsed;
  const control = v.control ?? env.IOPFCTL_CONTROL ?? DEFAULT_CONTROL;
  const [cmd, ...args] = positionals;
  if (v.version && !v.help) return { control, command: { cmd: "version" } };
  if (v.help || cmd === undefined || cmd === "help") return { control, command: { cmd: "help" } };
  const allowed = ALLOWED[cmd];
  if (!allowed) throw new CtlUsageError(`unknown command "${cmd}"; expected one of ${Object.keys(ALLOWED).join(", ")}`);
  for (const key of Object.keys(v)) {
    if (key !== "control" && !allowed.includes(key)) throw new CtlUsageError(`${cmd} takes no --${key}${allowed.length ? `; it takes --${allowed.join(", --")}` : ""}`);
  }
  const wantsFile = cmd === "record" || cmd === "replay";
  if (args.length !== (wantsFile ? 1 : 0)) {
    throw new CtlUsageError(wantsFile ? `${cmd}: expected one FILE, got ${args.length === 0 ? "none" : args.join(" ")}` : `${cmd}: unexpected argument "${args.join(" ")}"`);
  }
  /** trace and record: 0 means no limit; inject: how many groups. */
  const count = (min: number, dflt: number, max: number): number => (v.count === undefined ? dflt : integer("count", v.count, min, max));
  switch (cmd) {
    case "status":
      return { control, command: { cmd, json: v.json ?? false } };
    case "trace":
      return { control, command: { cmd, filter: filterOf(v), json: v.json ?? false, count: count(0, 0, Number.MAX_SAFE_INTEGER) } };
    case "top":
      return {
        control,
        command: {
          cmd, intervalMs: Math.round(1000 * (v.interval === undefined ? 1 : positive("interval", v.interval))),
          iterations: v.iterations === undefined ? 0 : integer("iterations", v.iterations, 1, Number.MAX_SAFE_INTEGER), plain: v.plain ?? false,
        },
      };
    case "inject": {
      const devs = list(v.dev);
      const pasids = list(v.pasid);
      if (devs.length !== 1) throw new CtlUsageError(`inject: expected one --dev N (the host dev_id to fault on), got ${devs.length === 0 ? "none" : devs.join(", ")}`);
      if (pasids.length > 1) throw new CtlUsageError(`inject: expected at most one --pasid, got ${pasids.join(", ")}`);
      return {
        control,
        command: {
          cmd, dev: integer("dev", devs[0]!, 0, 0xffff_ffff), ...(pasids[0] !== undefined ? { pasid: integer("pasid", pasids[0], 0, 0xfffff) } : {}),
          addr: v.addr === undefined ? 0x10000 : integer("addr", v.addr, 0, Number.MAX_SAFE_INTEGER), perm: perm(v.perm),
          count: count(1, 1, MAX_INJECT), pages: v.pages === undefined ? 1 : integer("pages", v.pages, 1, MAX_INJECT_PAGES), emulator: v.emulator ?? false,
        },
      };
    }
    case "attach":
    case "detach": {
      const where = v.handoff ?? env.IOPFCTL_HANDOFF;
      if (where === undefined || !where.startsWith("unix:") || where.length === 5) {
        throw new CtlUsageError(`${cmd}: expected --handoff unix:PATH (the relay's --handoff), got ${where === undefined ? "none" : `"${where}"`}`);
      }
      if (v["fault-id"] === undefined) throw new CtlUsageError(`${cmd}: expected --fault-id ID (the fault object's id in the VMM's iommufd)`);
      const faultId = integer("fault-id", v["fault-id"], 0, 0xffff_ffff);
      if (cmd === "detach") {
        const devs = list(v.dev).map((t) => integer("dev", t, 0, 0xffff_ffff));
        return { control, command: { cmd, handoff: where.slice(5), faultId, devIds: devs.length > 0 ? devs : null } };
      }
      if (v["fault-fd"] === undefined) throw new CtlUsageError("attach: expected --fault-fd N (an fd iopfctl inherited)");
      let devices: unknown;
      try {
        devices = JSON.parse(v.devices ?? "[]");
      } catch {
        throw new CtlUsageError(`--devices: expected a JSON array of device entries like '[{"devId":3,"endpointId":8}]', got "${(v.devices ?? "").slice(0, 60)}"`);
      }
      if (!Array.isArray(devices)) throw new CtlUsageError("--devices: expected a JSON array of device entries");
      return {
        control,
        command: {
          cmd, handoff: where.slice(5), faultFd: integer("fault-fd", v["fault-fd"], 0, 0x7fff_ffff), faultId, devices, viommu: v.viommu ?? null,
          vmmPid: v["vmm-pid"] === undefined ? null : integer("vmm-pid", v["vmm-pid"], 1, 0x7fff_ffff), emulator: v.emulator ?? false,
        },
      };
    }
    case "record":
      return {
        control,
        command: { cmd, file: args[0]!, filter: filterOf(v), count: count(0, 0, Number.MAX_SAFE_INTEGER), durationMs: v.duration === undefined ? 0 : Math.round(1000 * positive("duration", v.duration)) },
      };
    default:
      return {
        control,
        command: {
          cmd: "replay", file: args[0]!, emulator: v.emulator ?? false, speed: v.speed === undefined ? 1 : positive("speed", v.speed),
          addr: v.addr === undefined ? 0x10000 : integer("addr", v.addr, 0, Number.MAX_SAFE_INTEGER), perm: perm(v.perm),
        },
      };
  }
}
