// Where the control server listens and iopfctl connects: tcp:HOST:PORT on a
// loopback address, or unix:PATH. The control plane has no authentication
// (it shows every fault's device and PASID, and can inject faults into a
// synthetic source), so it is never reachable from beyond this machine.
import { isLoopbackHost } from "../../link/transport/listen-policy.js";
import { UsageError } from "../cli-options.js";

export type ControlAddress = { kind: "tcp"; host: string; port: number } | { kind: "unix"; path: string };

export const DEFAULT_CONTROL = "tcp:127.0.0.1:9464";
const FORMS = "tcp:127.0.0.1:9464 (tcp:[::1]:9464 for IPv6) or unix:/run/iopf-relay/vm1.ctl";

/** A usage error: the command line named a bad address. */
export class ControlAddressError extends UsageError {}

export function parseControlAddress(text: string): ControlAddress {
  const bad = (why: string): never => {
    throw new ControlAddressError(`control address "${text}": ${why}; expected ${FORMS}`);
  };
  if (text.startsWith("unix:")) {
    const path = text.slice("unix:".length);
    if (path === "") bad("no path after unix:");
    return { kind: "unix", path };
  }
  if (!text.startsWith("tcp:")) bad("unknown form");
  const rest = text.slice("tcp:".length);
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(rest) ?? /^([^:[\]]+):(\d{1,5})$/.exec(rest);
  if (!m) return bad("expected HOST:PORT after tcp:");
  const host = m[1] as string;
  const port = Number(m[2]);
  if (port > 65535) bad(`port ${port} is above 65535`);
  if (!isLoopbackHost(host)) {
    bad(`${host} is not a loopback address (127.0.0.0/8, ::1 or localhost); the control server has no authentication, ` +
      "so it only listens where this machine alone can reach it (use an SSH tunnel to watch it from elsewhere)");
  }
  return { kind: "tcp", host, port };
}

export function formatControlAddress(a: ControlAddress): string {
  if (a.kind === "unix") return `unix:${a.path}`;
  return `tcp:${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port}`;
}
