// Command-line flags of iopf-agent and how they override the config file.
import { parseArgs } from "node:util";
import { AgentConfig, checkAddress, ConfigError } from "./config.js";
import { isLogLevel } from "./log.js";

export const USAGE = `Usage: iopf-agent [options]

The guest side of iopf-relay: answers the IO page faults of devices assigned
to this VM. Finds the virtio-serial port named org.iopf-relay.0 under
/sys/class/virtio-ports, keeps it open while the host is away, and answers
each fault with the handler the config picks for its (endpoint, PASID).

Options:
  --config FILE        JSON config file (see docs/guest-agent.md); flags override it
  --port PATH          open this device (e.g. /dev/vport1p1) instead of looking up a name
  --port-name NAME     the port's virtio-serial name (default org.iopf-relay.0)
  --connect ADDR       connect to unix:PATH, tcp:HOST:PORT, ws://HOST:PORT/PATH or chardev:PATH instead
  --sysfs-root DIR     where sysfs is mounted (default /sys)
  --dev-root DIR       where the vportNpM devices are (default /dev)
  --credits N          groups the agent holds at once, granted at each session (default 256)
  --app-socket PATH    Unix socket for guest programs, or "none" (default /run/iopf-agent.sock)
  --log-level LEVEL    error, warn, info or debug (default info); logs are JSON lines on stderr
  --version            print the agent's version and exit
  --help               print this and exit

Stops on SIGTERM or SIGINT after saying goodbye to the relay.
`;

export interface CliArgs {
  help: boolean;
  version: boolean;
  configFile: string | null;
  apply(config: AgentConfig): void;
}

export function parseCli(argv: string[]): CliArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: "string" },
        port: { type: "string" },
        "port-name": { type: "string" },
        connect: { type: "string" },
        "sysfs-root": { type: "string" },
        "dev-root": { type: "string" },
        credits: { type: "string" },
        "app-socket": { type: "string" },
        "log-level": { type: "string" },
        help: { type: "boolean" },
        version: { type: "boolean" },
      },
    }));
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}; see iopf-agent --help`);
  }
  const v = values;
  let credits: number | null = null;
  if (v.credits !== undefined) {
    credits = Number(v.credits);
    if (!Number.isInteger(credits) || credits < 1) throw new ConfigError(`--credits: expected a positive integer, found ${JSON.stringify(v.credits)}`);
  }
  if (v["log-level"] !== undefined && !isLogLevel(v["log-level"])) {
    throw new ConfigError(`--log-level: expected error, warn, info or debug, found ${JSON.stringify(v["log-level"])}`);
  }
  if (v.connect !== undefined) checkAddress(v.connect, "--connect");
  const given = [v.port, v.connect].filter((x) => x !== undefined).length;
  if (given > 1) throw new ConfigError("--port and --connect each choose where the link goes: give one of them");
  return {
    help: v.help === true,
    version: v.version === true,
    configFile: v.config ?? null,
    apply(c: AgentConfig): void {
      if (v.port !== undefined) Object.assign(c.port, { path: v.port, connect: null });
      if (v.connect !== undefined) Object.assign(c.port, { connect: v.connect, path: null });
      if (v["port-name"] !== undefined) c.port.name = v["port-name"];
      if (v["sysfs-root"] !== undefined) c.port.sysfsRoot = v["sysfs-root"];
      if (v["dev-root"] !== undefined) c.port.devRoot = v["dev-root"];
      if (credits !== null) c.credits = credits;
      if (v["app-socket"] !== undefined) c.appSocket = v["app-socket"] === "none" ? null : v["app-socket"];
      if (v["log-level"] !== undefined && isLogLevel(v["log-level"])) c.logLevel = v["log-level"];
    },
  };
}
