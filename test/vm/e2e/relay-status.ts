// Guest side (VM-A): the relay's own account while it runs, from its control
// server (--control unix:PATH, GET /api/status): how many groups it has
// read, sent and answered, and how many it holds. A scenario waits on it
// to know when to act (groups in the agent's hands) and when to stop.
import { request } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { RelayStatus } from "../../../src/relay/control/status.js";

function relayStatus(socketPath: string): Promise<RelayStatus> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: "/api/status", timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => { body += d; });
      res.on("end", () => {
        if (res.statusCode !== 200) return reject(new Error(`GET /api/status on ${socketPath}: HTTP ${res.statusCode}, expected 200: ${body}`));
        resolve(JSON.parse(body) as RelayStatus);
      });
    });
    req.on("timeout", () => req.destroy(new Error(`GET /api/status on ${socketPath}: no answer within 5 s`)));
    req.on("error", reject);
    req.end();
  });
}

/** Polls the status until ok(status); a relay not listening yet (starting, restarting) is polled again. */
export async function waitStatus(socketPath: string, what: string, ok: (s: RelayStatus) => boolean, timeoutMs: number): Promise<RelayStatus> {
  const until = Date.now() + timeoutMs;
  let last: RelayStatus | string = "no answer yet";
  for (;;) {
    try {
      const s = await relayStatus(socketPath);
      if (ok(s)) return s;
      last = s;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > until) {
      const shown = typeof last === "string" ? last : JSON.stringify({ pid: last.pid, session: last.session.state, inFlight: last.inFlight, counters: last.counters });
      throw new Error(`expected the relay's status to show ${what} within ${timeoutMs} ms; last: ${shown}`);
    }
    await sleep(100);
  }
}
