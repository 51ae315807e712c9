// Keeps web pages out of the control plane. Any page the operator's browser
// shows can make requests to 127.0.0.1: a WebSocket is not bound by the
// same-origin policy, so the Origin header is all that tells a page from
// iopfctl; and a DNS-rebinding page reaches us under its own host name, so
// the Host header must name a loopback host. Clients that send no Origin
// (iopfctl, curl, Prometheus) are not browsers and are allowed.
import type { IncomingMessage } from "node:http";
import { isLoopbackHost } from "../../link/transport/listen-policy.js";

/** The reason to refuse, or null to serve. `overTcp` is false on a Unix socket, which no browser reaches. */
export function hostProblem(req: IncomingMessage, overTcp: boolean): string | null {
  if (!overTcp) return null;
  const host = req.headers.host;
  if (host === undefined) return null;
  const name = host.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
  if (isLoopbackHost(name)) return null;
  return `Host "${host}" is not a loopback name; the control server answers only requests addressed to 127.0.0.1, ::1 or localhost`;
}

/** A browser request from a page of another origin than this server's own. */
export function originProblem(req: IncomingMessage): string | null {
  const origin = req.headers.origin;
  if (origin === undefined) return null;
  const own = req.headers.host === undefined ? null : `http://${req.headers.host}`;
  if (origin === own) return null;
  return `Origin ${origin} is not this server's own (${own ?? "no Host header"}); a web page of another site may not read the relay's trace or inject faults`;
}
