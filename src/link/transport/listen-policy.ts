// Which addresses a TCP or WebSocket listener may bind. The guest link
// carries fault traffic that decides what a device may touch in memory, and
// it has no authentication of its own: by default it is reachable from this
// machine only.
import { isIPv4, isIPv6 } from "node:net";
import { TransportError } from "./transport-error.js";

export interface NetworkListenOptions {
  /** Bind a non-loopback address (anyone who can reach it can speak the link). */
  allowRemote?: boolean;
}

export function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  if (isIPv4(host)) return host.startsWith("127.");
  if (isIPv6(host)) {
    const lower = host.toLowerCase();
    return lower === "::1" || lower === "0:0:0:0:0:0:0:1" || /^::ffff:127\.\d+\.\d+\.\d+$/.test(lower);
  }
  return false;
}

/** Throws unless host is loopback or the caller explicitly allowed remote peers. */
export function checkListenHost(scheme: string, host: string, options: NetworkListenOptions): void {
  if (options.allowRemote || isLoopbackHost(host)) return;
  throw new TransportError(
    `${scheme}: refusing to listen on ${host}, which is not a loopback address; ` +
      `expected 127.0.0.0/8, ::1 or localhost. The guest link has no authentication, ` +
      `so listening beyond this machine needs the explicit allowRemote option.`,
  );
}
