// Transport addresses as the CLIs take them, e.g. --link unix:/run/iopf.sock.
// One string names both the transport and where it goes.

export type TransportAddress =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number }
  | { kind: "ws"; host: string; port: number; path: string }
  | { kind: "chardev"; path: string };

export const ACCEPTED_FORMS =
  "unix:/run/iopf.sock, tcp:127.0.0.1:7000 (tcp:[::1]:7000 for IPv6), ws://127.0.0.1:7000/link, chardev:/dev/vport0p1";

class AddressError extends Error {
  constructor(text: string, why: string) {
    super(`invalid transport address "${text}": ${why}. Accepted forms: ${ACCEPTED_FORMS}`);
    this.name = "AddressError";
  }
}

function parsePort(text: string, port: string): number {
  const n = /^\d{1,5}$/.test(port) ? Number(port) : NaN;
  if (!(n >= 0 && n <= 65535)) throw new AddressError(text, `port "${port}" is not a number from 0 to 65535`);
  return n;
}

function parseTcp(text: string, rest: string): TransportAddress {
  // [v6]:port, or host:port where host has no colon.
  const m = /^\[([0-9A-Fa-f:.]+)\]:([^:]*)$/.exec(rest) ?? /^([^:[\]]+):([^:]*)$/.exec(rest);
  if (!m) {
    const why = rest.split(":").length > 2 ? "an IPv6 host goes in brackets, as tcp:[::1]:7000" : "expected HOST:PORT after tcp:";
    throw new AddressError(text, why);
  }
  return { kind: "tcp", host: m[1] as string, port: parsePort(text, m[2] as string) };
}

function parseWs(text: string): TransportAddress {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new AddressError(text, "not a valid ws:// URL");
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new AddressError(text, "a ws:// address has a host, a port and a path only (no user, query or fragment)");
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!host) throw new AddressError(text, "the ws:// URL has no host");
  return { kind: "ws", host, port: url.port ? Number(url.port) : 80, path: url.pathname };
}

function nonEmptyPath(text: string, kind: "unix" | "chardev", path: string): TransportAddress {
  if (!path) throw new AddressError(text, `expected a path after ${kind}:`);
  return { kind, path };
}

export function parseAddress(text: string): TransportAddress {
  const colon = text.indexOf(":");
  const scheme = colon < 0 ? "" : text.slice(0, colon);
  const rest = text.slice(colon + 1);
  switch (scheme) {
    case "unix":
      return nonEmptyPath(text, "unix", rest);
    case "chardev":
      return nonEmptyPath(text, "chardev", rest);
    case "tcp":
      return parseTcp(text, rest);
    case "ws":
      return parseWs(text);
    case "wss":
      throw new AddressError(text, "wss:// (TLS) is not supported; use ws:// on loopback, or put a TLS proxy in front");
    default:
      throw new AddressError(text, scheme ? `unknown transport "${scheme}"` : "no transport prefix");
  }
}

export function formatAddress(address: TransportAddress): string {
  const host = (h: string) => (h.includes(":") ? `[${h}]` : h);
  switch (address.kind) {
    case "unix":
    case "chardev":
      return `${address.kind}:${address.path}`;
    case "tcp":
      return `tcp:${host(address.host)}:${address.port}`;
    case "ws":
      return `ws://${host(address.host)}:${address.port}${address.path}`;
  }
}
