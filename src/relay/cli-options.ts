// The iopf-relay command line, parsed and checked. Follows QEMU's vhost-user
// backend program conventions: --socket-path or --fd (exclusive) for the
// channel, --print-capabilities, errors on stderr with a non-zero exit.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { parseAddress } from "../link/transport/address.js";
import { LinkEndpointSpec } from "./link-endpoint.js";
import { LogFormat, LogLevel } from "./log.js";

/** The demo load's ceiling: well above what one relay carries, low enough that the load's arithmetic stays exact. */
export const MAX_RATE = 1_000_000;

export const USAGE = `usage: iopf-relay [options]
       iopf-relay print-qemu-args --vm NAME [...]   the QEMU arguments for a VM's port (print-qemu-args --help)

The agent's channel (exactly one):
  --socket-path PATH    listen on a Unix socket (QEMU's chardev connects: -chardev socket,path=PATH,reconnect=1)
  --listen ADDR         listen on unix:PATH, tcp:HOST:PORT or ws://HOST:PORT/PATH (loopback only)
  --connect ADDR        connect to QEMU's chardev server socket (unix:PATH or tcp:HOST:PORT); reconnects
  --fd N                an inherited, connected socket
  --socket-mode MODE    the listening Unix socket's mode: 0600 (default) or 0660, so that the
                        relay's group (e.g. QEMU's user, added to it) may connect

Fault sources (at least one):
  --source KIND         emulator (the built-in kernel emulator) or synthetic (in-process)
  --fault-fd N          an inherited iommufd fault fd (repeatable); checked, and its cookies a
                        previous reader left are answered SUCCESS before the first read
  --emulator-fd N       an inherited kernel emulator fd (its socket or kernel-exact file), for
                        tests and benchmarks (repeatable)
  --iommufd             open /dev/iommu, allocate a fault queue, print its ids as JSON on stdout
  --handoff unix:PATH   a socket where the VMM hands fault fds over and takes them back at runtime
                        (docs/handoff.md); the relay may then start with no fault source
  --handoff-group NAME  make the handoff socket 0660 with this group (the VMM's), not 0600
  --keeper-channel N    (set by the keeper for its relay) the inherited socket its handoffs come on

  --keeper              run as a keeper: hold the fault fds (and the emulator) and run the relay as
                        a child, restarting it with the same fds after it exits
  --control ADDR        serve metrics, status, live events and the dashboard on ADDR
                        (tcp:127.0.0.1:PORT or unix:PATH; loopback only)
  --config FILE         JSON: viommu, devices, deadlineCode, limits (docs/operations.md)
  --rate N              groups per second raised by the emulator or synthetic source (demo load;
                        at most ${MAX_RATE})
  --log-format F        json or text (default: text on a terminal, json otherwise)
  --log-level L         debug, info, warn, error (default info)
  --print-capabilities  print what this build speaks, as JSON, and exit
  --version, --help`;

export interface RelayCli {
  link: LinkEndpointSpec;
  sources: string[];
  faultFds: number[];
  emulatorFds: number[];
  iommufd: boolean;
  /** The handoff socket's path, or null. */
  handoff: string | null;
  handoffGroup: string | null;
  /** The keeper's channel (an inherited SOCK_SEQPACKET fd), in a relay the keeper runs. */
  keeperChannel: number | null;
  config: string | null;
  rate: number;
  logFormat: LogFormat | undefined;
  logLevel: LogLevel;
  keeper: boolean;
  control: string | null;
}

export type ParsedCli = { kind: "run"; cli: RelayCli } | { kind: "print-capabilities" } | { kind: "help" } | { kind: "version" };

export class UsageError extends Error {
  override readonly name = "UsageError";
}

type Flags = NonNullable<ParseArgsConfig["options"]>;

/** Flags only, no positionals; node's own complaint about them becomes a UsageError, after `prefix`. */
export function parseFlags<O extends Flags>(argv: string[], options: O, prefix = "") {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError(prefix + (err as Error).message);
  }
}

function integer(flag: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    throw new UsageError(`${flag}: expected an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `${min}..${max}`}, got "${text.slice(0, 40)}"`);
  }
  return n;
}

/** A transport address, checked before anything is opened. */
function address(flag: string, text: string): string {
  try {
    parseAddress(text);
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
  return text;
}

export function parseRelayCli(argv: string[]): ParsedCli {
  const values = parseFlags(argv, {
    "socket-path": { type: "string" }, "socket-mode": { type: "string" }, listen: { type: "string" }, connect: { type: "string" }, fd: { type: "string" },
    source: { type: "string", multiple: true }, "fault-fd": { type: "string", multiple: true },
    "emulator-fd": { type: "string", multiple: true }, iommufd: { type: "boolean" },
    handoff: { type: "string" }, "handoff-group": { type: "string" }, "keeper-channel": { type: "string" },
    config: { type: "string" }, rate: { type: "string" },
    "log-format": { type: "string" }, "log-level": { type: "string" },
    keeper: { type: "boolean" }, control: { type: "string" },
    "print-capabilities": { type: "boolean" }, version: { type: "boolean" }, help: { type: "boolean", short: "h" },
  });
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };
  if (values["print-capabilities"]) return { kind: "print-capabilities" };

  const channels = (["socket-path", "listen", "connect", "fd"] as const).filter((k) => values[k] !== undefined);
  if (channels.length !== 1) {
    throw new UsageError(channels.length === 0
      ? "no channel to the agent: give one of --socket-path, --listen, --connect, --fd"
      : `--${channels.join(" and --")} are exclusive: give exactly one channel to the agent`);
  }
  const link: LinkEndpointSpec = values["socket-path"] !== undefined ? { listen: `unix:${values["socket-path"]}` }
    : values.listen !== undefined ? { listen: address("--listen", values.listen) }
    : values.connect !== undefined ? { connect: address("--connect", values.connect) }
    : { fd: integer("--fd", values.fd as string, 0) };
  const mode = values["socket-mode"];
  if (mode !== undefined) {
    if (!("listen" in link) || !link.listen.startsWith("unix:")) throw new UsageError("--socket-mode applies to a listening Unix socket: give it with --socket-path PATH or --listen unix:PATH");
    if (mode !== "0600" && mode !== "600" && mode !== "0660" && mode !== "660") throw new UsageError(`--socket-mode: expected 0600 or 0660, got "${mode}"`);
    link.socketMode = parseInt(mode, 8);
  }

  const sources = values.source ?? [];
  for (const s of sources) if (s !== "emulator" && s !== "synthetic") throw new UsageError(`--source: expected emulator or synthetic, got "${s}"`);
  const faultFds = (values["fault-fd"] ?? []).map((t) => integer("--fault-fd", t, 0));
  const emulatorFds = (values["emulator-fd"] ?? []).map((t) => integer("--emulator-fd", t, 0));
  let handoff: string | null = null;
  if (values.handoff !== undefined) {
    if (!values.handoff.startsWith("unix:") || values.handoff.length === 5) throw new UsageError(`--handoff: expected unix:PATH, got "${values.handoff.slice(0, 60)}"`);
    handoff = values.handoff.slice(5);
  }
  if (values["handoff-group"] !== undefined && handoff === null) throw new UsageError("--handoff-group needs --handoff unix:PATH");
  if (handoff !== null && values.config === undefined) {
    throw new UsageError(`--handoff needs --config FILE: its "viommu" is the model every attach is checked against (its "devices" may be [], each attach brings its own)`);
  }
  const keeperChannel = values["keeper-channel"] === undefined ? null : integer("--keeper-channel", values["keeper-channel"], 3);
  if (sources.length === 0 && faultFds.length === 0 && emulatorFds.length === 0 && !values.iommufd && handoff === null && keeperChannel === null) {
    throw new UsageError("no fault source: give --iommufd, --fault-fd N, --emulator-fd N, --handoff unix:PATH, or --source emulator|synthetic");
  }
  const format = values["log-format"];
  if (format !== undefined && format !== "json" && format !== "text") throw new UsageError(`--log-format: expected json or text, got "${format}"`);
  const level = values["log-level"] ?? "info";
  if (!["debug", "info", "warn", "error"].includes(level)) throw new UsageError(`--log-level: expected debug, info, warn or error, got "${level}"`);
  return {
    kind: "run",
    cli: {
      link, sources, faultFds, emulatorFds, iommufd: values.iommufd ?? false, handoff, handoffGroup: values["handoff-group"] ?? null, keeperChannel, config: values.config ?? null,
      rate: values.rate !== undefined ? integer("--rate", values.rate, 0, MAX_RATE) : 0,
      logFormat: format as LogFormat | undefined, logLevel: level as LogLevel,
      keeper: values.keeper ?? false, control: values.control ?? null,
    },
  };
}
