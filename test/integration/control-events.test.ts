// The live event stream of a real relay: each viewer's filter (device,
// PASID, kind), the Origin and Host checks that keep web pages out, the
// Unix socket's mode, and the refusal of a non-loopback address.
import test from "ava";
import { statSync } from "node:fs";
import { request } from "node:http";
import { WebSocket } from "ws";
import type { StreamMessage, WireEvent } from "../../src/relay/control/wire-event.js";
import { httpGet, inject, run, RELAY_CLI, startRelay, tempDir, until, waitStatus } from "./control-harness.js";
import { reconnectingAgent } from "../support/reconnecting-agent.js";

const CONFIG = {
  viommu: "virtio-iommu",
  devices: [{ devId: 1, endpointId: 8, deadlineMs: 20 }, { devId: 2, endpointId: 9, deadlineMs: 20 }],
  limits: { sessionGraceMs: 600_000 },
};

interface Viewer {
  ws: WebSocket;
  events: WireEvent[];
  messages: StreamMessage[];
}

function wsUrl(control: string): string {
  return `ws://${control.slice("tcp:".length)}/api/events`;
}

async function viewer(control: string, filter: object): Promise<Viewer> {
  const ws = new WebSocket(wsUrl(control));
  const v: Viewer = { ws, events: [], messages: [] };
  ws.on("message", (d) => {
    const m = JSON.parse(d.toString()) as StreamMessage;
    v.messages.push(m);
    if (m.type === "events") v.events.push(...m.events);
  });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  ws.send(JSON.stringify({ type: "subscribe", ...filter }));
  return v;
}

/** The HTTP status a WebSocket upgrade got: 101 when it opened. */
function upgradeStatus(control: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(control), { headers });
    ws.once("open", () => {
      ws.close();
      resolve(101);
    });
    ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
    ws.once("error", (err) => (err.message.includes("Unexpected server response") ? undefined : reject(err)));
  });
}

test("each viewer gets the events its filter asks for, and nothing before it subscribes", async (t) => {
  const relay = await startRelay(t, { source: "synthetic", config: CONFIG });
  const byDevKind = await viewer(relay.control, { dev: [1], kind: ["group-read"] });
  const byPasid = await viewer(relay.control, { pasid: [7] });
  const expired = await viewer(relay.control, { kind: ["expired"] });
  const silent = new WebSocket(wsUrl(relay.control));
  const silentMessages: StreamMessage[] = [];
  silent.on("message", (d) => silentMessages.push(JSON.parse(d.toString()) as StreamMessage));
  await waitStatus(relay.control, (s) => s.viewers === 4, "four viewers");
  // An agent that answers nothing: every group is answered by its deadline.
  const agent = reconnectingAgent(relay.socketPath, 0, () => null);
  t.teardown(() => agent.stop());
  await waitStatus(relay.control, (s) => s.session.state === "up", "the silent agent's session");

  await inject(relay.control, { dev: 1, pasid: 7, addr: 0x1000, count: 3 });
  await inject(relay.control, { dev: 2, pasid: 7, addr: 0x8000, count: 2 });
  await inject(relay.control, { dev: 1, pasid: 3, addr: 0x10000, count: 4 });
  await waitStatus(relay.control, (s) => s.counters.deadlines === 9, "nine deadline answers");
  await until(() => expired.events.length >= 9 && byPasid.events.length >= 10 && byDevKind.events.length >= 7, 10_000, "the events");
  await new Promise((r) => setTimeout(r, 150));

  t.deepEqual(byDevKind.events.map((e) => [e.kind, e.dev, e.pasid]), [...Array(3).fill(["group-read", 1, 7]), ...Array(4).fill(["group-read", 1, 3])]);
  const ofPasid = byPasid.events.filter((e) => e.kind !== "sent" && e.kind !== "session-up" && e.kind !== "session-down");
  t.is(ofPasid.length, 10, "five groups of PASID 7, each read and expired");
  t.true(ofPasid.every((e) => e.pasid === 7));
  t.deepEqual(new Set(ofPasid.map((e) => e.kind)), new Set(["group-read", "expired"]));
  t.is(expired.events.length, 9);
  t.true(expired.events.every((e) => e.kind === "expired" && e.code === "invalid" && e.origin === "deadline" && (e.latencyUs ?? 0) >= 20_000));
  t.deepEqual(silentMessages.map((m) => m.type), ["hello"], "a viewer that never subscribed gets only the hello");

  byDevKind.ws.send(JSON.stringify({ type: "subscribe", kind: ["nonsense"] }));
  await until(() => byDevKind.messages.some((m) => m.type === "error"), 10_000, "the error message");
  const error = byDevKind.messages.find((m) => m.type === "error");
  t.regex(error?.type === "error" ? error.message : "", /kind: expected an array of group-read, sent, answered, expired/);
});

test("a browser page of another origin may not open the stream or inject; iopfctl (no Origin) and the server's own page may", async (t) => {
  const relay = await startRelay(t, { source: "synthetic", config: CONFIG });
  const own = `http://${relay.control.slice("tcp:".length)}`;
  t.is(await upgradeStatus(relay.control, {}), 101, "no Origin: not a browser");
  t.is(await upgradeStatus(relay.control, { Origin: own }), 101, "the dashboard's own origin");
  t.is(await upgradeStatus(relay.control, { Origin: "http://evil.example" }), 403);
  t.is(await upgradeStatus(relay.control, { Origin: "http://localhost:1234" }), 403, "another port is another origin");
  t.is(await upgradeStatus(relay.control, { Origin: "null" }), 403, "a sandboxed or file: page");
  t.is(await upgradeStatus(relay.control, { Host: "rebind.example:80", Origin: "http://rebind.example:80" }), 403, "DNS rebinding: a matching Origin under a non-loopback Host");

  const rebound = await httpGet(relay.control, "/api/status", { Host: "rebind.example" });
  t.is(rebound.status, 421);
  t.regex(rebound.body, /not a loopback name/);

  const post = (headers: Record<string, string>): Promise<number> => new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: Number(relay.control.split(":").pop()), path: "/api/inject", method: "POST", headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end(JSON.stringify({ dev: 1, addr: 4096 }));
  });
  t.is(await post({ "content-type": "application/json", origin: "http://evil.example" }), 403);
  t.is(await post({ "content-type": "text/plain" }), 415, "a cross-site form's content type");
  t.is(await post({ "content-type": "application/json" }), 200);
});

test("a Unix control socket is created 0600 and serves the same endpoints", async (t) => {
  const relay = await startRelay(t, { source: "synthetic", config: CONFIG, control: "unix" });
  const path = relay.control.slice("unix:".length);
  t.is(statSync(path).mode & 0o777, 0o600);
  t.is((await httpGet(relay.control, "/healthz")).body, "ok\n");
  t.is(await relay.stop(), 0);
  t.throws(() => statSync(path), { code: "ENOENT" }, "the socket file is removed at exit");
});

test("a non-loopback or malformed control address is refused before the relay starts", async (t) => {
  const dir = tempDir(t, "iopf-control-bad-");
  for (const [address, message] of [
    ["tcp:0.0.0.0:9464", /control address "tcp:0.0.0.0:9464": 0.0.0.0 is not a loopback address/],
    ["tcp:[::]:9464", /:: is not a loopback address/],
    ["http://127.0.0.1:9464", /unknown form; expected tcp:127.0.0.1:9464/],
  ] as const) {
    const p = run(t, RELAY_CLI, ["--source", "synthetic", "--socket-path", `${dir}/r.sock`, "--control", address]);
    t.is(await p.exited, 2, address);
    t.regex(p.stderr(), message);
  }
});
