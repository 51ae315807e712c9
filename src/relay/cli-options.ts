// The iopf-relay command line, parsed and checked. Follows QEMU's vhost-user
// backend program conventions: --socket-path or --fd (exclusive) for the
// channel, --print-capabilities, errors on stderr with a non-zero exit.
import { parseArgs } from "node:util";
import { LinkEndpointSpec } from "./link-endpoint.js";
import { LogFormat, LogLevel } from "./log.js";

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
  --fault-fd N          an inherited iommufd fault fd (repeatable)
  --iommufd             open /dev/iommu, allocate a fault queue, print its ids as JSON on stdout

  --keeper              run as a keeper: hold the fault fds (and the emulator) and run the relay as
                        a child, restarting it with the same fds after a crash (needs a journal)
  --control ADDR        serve metrics, status, live events and the dashboard on ADDR
                        (tcp:127.0.0.1:PORT or unix:PATH; loopback only)
  --config FILE         JSON: viommu, devices, deadlineCode, limits, journal (docs/operations.md)
  --journal PATH        journal of unanswered groups, for restarts (overrides the config)
  --rate N              groups per second raised by the emulator or synthetic source (demo load)
  --log-format F        json or text (default: text on a terminal, json otherwise)
  --log-level L         debug, info, warn, error (default info)
  --print-capabilities  print what this build speaks, as JSON, and exit
  --version, --help`;

export interface RelayCli {
  link: LinkEndpointSpec;
  sources: string[];
  faultFds: number[];
  iommufd: boolean;
  config: string | null;
  journal: string | null;
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

function integer(flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min) throw new UsageError(`${flag}: expected an integer >= ${min}, got "${text}"`);
  return n;
}

export function parseRelayCli(argv: string[]): ParsedCli {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        "socket-path": { type: "string" }, "socket-mode": { type: "string" }, listen: { type: "string" }, connect: { type: "string" }, fd: { type: "string" },
        source: { type: "string", multiple: true }, "fault-fd": { type: "string", multiple: true }, iommufd: { type: "boolean" },
        config: { type: "string" }, journal: { type: "string" }, rate: { type: "string" },
        "log-format": { type: "string" }, "log-level": { type: "string" },
        keeper: { type: "boolean" }, control: { type: "string" },
        "print-capabilities": { type: "boolean" }, version: { type: "boolean" }, help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
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
    : values.listen !== undefined ? { listen: values.listen }
    : values.connect !== undefined ? { connect: values.connect }
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
  if (sources.length === 0 && faultFds.length === 0 && !values.iommufd) {
    throw new UsageError("no fault source: give --iommufd, --fault-fd N, or --source emulator|synthetic");
  }
  const format = values["log-format"];
  if (format !== undefined && format !== "json" && format !== "text") throw new UsageError(`--log-format: expected json or text, got "${format}"`);
  const level = values["log-level"] ?? "info";
  if (!["debug", "info", "warn", "error"].includes(level)) throw new UsageError(`--log-level: expected debug, info, warn or error, got "${level}"`);
  return {
    kind: "run",
    cli: {
      link, sources, faultFds, iommufd: values.iommufd ?? false, config: values.config ?? null, journal: values.journal ?? null,
      rate: values.rate !== undefined ? integer("--rate", values.rate, 0) : 0,
      logFormat: format as LogFormat | undefined, logLevel: level as LogLevel,
      keeper: values.keeper ?? false, control: values.control ?? null,
    },
  };
}
