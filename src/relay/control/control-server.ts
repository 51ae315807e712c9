// The relay's control server (off unless --control ADDR): metrics for
// Prometheus, health, a status snapshot, the live event stream over a
// WebSocket, the dashboard page, and fault injection into a synthetic
// source. It only reads the relay; the one thing it writes into is a
// synthetic or emulated fault source.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import { Logger } from "../log.js";
import { RelayEvent } from "../relay-core.js";
import { ControlAddress } from "./control-address.js";
import { DASHBOARD_HTML, DASHBOARD_JS } from "./dashboard-page.js";
import { DeviceStats } from "./device-stats.js";
import { EventStream, StreamLimits, DEFAULT_STREAM_LIMITS } from "./event-stream.js";
import { inject, InjectError, Injectors, parseInjectRequest } from "./inject.js";
import { listenOn } from "./listen.js";
import { PROMETHEUS_CONTENT_TYPE, renderMetrics } from "./prometheus.js";
import { RelayView } from "./relay-view.js";
import { hostProblem, originProblem } from "./request-guard.js";
import { relayStatus } from "./status.js";
import { toWireEvent } from "./wire-event.js";

export interface ControlServerOptions {
  address: ControlAddress;
  view: RelayView;
  injectors: Injectors;
  log: Logger;
  stream?: StreamLimits;
}

export interface ControlServer {
  /** Where it listens, with the real port when port 0 was asked. */
  readonly description: string;
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;
const ENDPOINTS = "GET / (dashboard), /healthz, /metrics, /api/status, WebSocket /api/events, POST /api/inject";
const PAGE_HEADERS = {
  // The page loads nothing from elsewhere (the machine may have no network) and may not be framed.
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "cache-control": "no-store",
};

export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const { view, log } = opts;
  const overTcp = opts.address.kind === "tcp";
  const stats = new DeviceStats();
  const stream = new EventStream(view.software, opts.stream ?? DEFAULT_STREAM_LIMITS);
  // Counting per device needs every event; the stream is fed only while someone watches.
  const onEvent = (e: RelayEvent): void => {
    stats.observe(e);
    if (stream.viewerCount > 0) stream.publish(toWireEvent(e, Date.now()));
  };
  view.core.events.on("event", onEvent);
  const injectable = { synthetic: opts.injectors.synthetic !== null, emulator: opts.injectors.emulator !== null };

  const send = (res: ServerResponse, status: number, type: string, body: string, headers: object = {}): void => {
    res.writeHead(status, { "content-type": type, "cache-control": "no-store", ...headers });
    res.end(body);
  };
  const fail = (res: ServerResponse, status: number, message: string): void => send(res, status, "application/json", JSON.stringify({ error: message }) + "\n");

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const refused = hostProblem(req, overTcp);
    if (refused) return fail(res, 421, refused);
    const path = (req.url ?? "/").split("?")[0];
    const route = `${req.method} ${path}`;
    switch (route) {
      case "GET /":
        return send(res, 200, "text/html; charset=utf-8", DASHBOARD_HTML, PAGE_HEADERS);
      case "GET /dashboard.js":
        return send(res, 200, "text/javascript; charset=utf-8", DASHBOARD_JS, PAGE_HEADERS);
      case "GET /healthz": {
        // A fault source that stopped leaves its devices unserved: not ok, with why, until the relay restarts.
        const failures = view.core.failures;
        if (failures.length === 0) return send(res, 200, "text/plain; charset=utf-8", "ok\n");
        return send(res, 503, "text/plain; charset=utf-8", failures.map((f) => `fault source failed: ${f.source}: ${f.error}\n`).join(""));
      }
      case "GET /metrics":
        return send(res, 200, PROMETHEUS_CONTENT_TYPE, renderMetrics(view, stats, stream));
      case "GET /api/status":
        return send(res, 200, "application/json", JSON.stringify(relayStatus(view, stats, stream, injectable)) + "\n");
      case "POST /api/inject":
        return void postInject(req, res);
    }
    if (["/", "/dashboard.js", "/healthz", "/metrics", "/api/status", "/api/inject", "/api/events"].includes(path ?? "")) {
      return fail(res, 405, `${req.method} is not served on ${path}; the control server serves ${ENDPOINTS}`);
    }
    fail(res, 404, `no ${path} here; the control server serves ${ENDPOINTS}`);
  };

  const postInject = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const origin = originProblem(req);
    if (origin) return fail(res, 403, origin);
    // A cross-site form can post text/plain without asking; application/json needs a CORS preflight we never grant.
    if (!/^application\/json\b/.test(req.headers["content-type"] ?? "")) {
      return fail(res, 415, `expected Content-Type: application/json, got ${req.headers["content-type"] ?? "none"}`);
    }
    let body = "";
    for await (const chunk of req) {
      body += chunk;
      if (body.length > MAX_BODY) return fail(res, 413, `expected a request body under ${MAX_BODY} bytes`);
    }
    try {
      const request = parseInjectRequest(body);
      const raised = await inject(request, opts.injectors);
      send(res, 200, "application/json", JSON.stringify({ raised, target: request.target }) + "\n");
    } catch (err) {
      if (err instanceof InjectError) return fail(res, err.status, err.message);
      log.level("warn", "inject failed", { error: (err as Error).message });
      fail(res, 500, `inject failed: ${(err as Error).message}`);
    }
  };

  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false });
  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = (req.url ?? "/").split("?")[0];
    const refused = path !== "/api/events" ? `no WebSocket endpoint at ${path}; the event stream is at /api/events` : hostProblem(req, overTcp) ?? originProblem(req);
    if (refused) {
      log.level("warn", "control: WebSocket refused", { path, origin: req.headers.origin, host: req.headers.host, reason: refused });
      socket.end(`HTTP/1.1 ${path !== "/api/events" ? "404 Not Found" : "403 Forbidden"}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${refused}\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => stream.add(ws));
  };

  const server = createServer(handle);
  server.on("upgrade", upgrade);
  server.on("clientError", (_err, socket) => socket.destroy());
  let description: string;
  try {
    description = await listenOn(server, opts.address);
  } catch (err) {
    view.core.events.off("event", onEvent);
    throw err;
  }
  log("control server listening", { on: description, dashboard: overTcp ? `http://${description.slice(4)}/` : undefined });

  return {
    description,
    close: async () => {
      view.core.events.off("event", onEvent);
      stream.close();
      wss.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
