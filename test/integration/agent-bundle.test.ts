// The bundled agent, dist/iopf-agent.mjs, copied alone into an empty
// directory (no node_modules anywhere above it) and run as a child process:
// --help, then a handshake with a HostLink over a Unix socket, page requests
// answered, and a goodbye on SIGTERM.
import test from "ava";
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { UnixListener } from "../../src/link/transport/unix.js";
import { HostRecord, makeHost } from "../support/link-peers.js";
import { until } from "../support/memory-stream.js";

const bundle = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "dist", "iopf-agent.mjs");

function alone(t: { teardown: (f: () => void) => void }): string {
  // /tmp has no node_modules above it; the bundle must need none.
  const dir = mkdtempSync(join(tmpdir(), "agent-bundle-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(bundle, join(dir, "iopf-agent.mjs"));
  return dir;
}

function run(dir: string, args: string[]) {
  const child = spawn(process.execPath, [join(dir, "iopf-agent.mjs"), ...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (b: Buffer) => (out.stdout += b.toString()));
  child.stderr.on("data", (b: Buffer) => (out.stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, out, exited };
}

test("the bundle runs alone: --help", async (t) => {
  t.true(existsSync(bundle), `${bundle} is missing: run node scripts/build.mjs`);
  const dir = alone(t);
  const { out, exited } = run(dir, ["--help"]);
  t.is(await exited, 0);
  t.regex(out.stdout, /Usage: iopf-agent/);
  const bad = run(dir, ["--credits", "zero"]);
  t.is(await bad.exited, 2);
  t.regex(bad.out.stderr, /--credits: expected a positive integer, found "zero"/);
});

test("the bundle runs alone: handshake with a relay over a Unix socket, answers, goodbye on SIGTERM", async (t) => {
  const dir = alone(t);
  const hosts: HostRecord[] = [];
  const listener = await UnixListener.listen(join(dir, "relay.sock"));
  t.teardown(() => listener.close());
  listener.on("connection", (stream) => {
    const host = makeHost(stream);
    hosts.push(host);
    host.link.start();
  });
  writeFileSync(
    join(dir, "agent.json"),
    JSON.stringify({ credits: 64, handlers: [{ pasid: 5, handler: "policy", rules: [{ start: "0x10000", end: "0x20000", perm: "rw", answer: "success" }] }] }),
  );
  const { child, out, exited } = run(dir, ["--config", join(dir, "agent.json"), "--connect", `unix:${join(dir, "relay.sock")}`, "--app-socket", join(dir, "app.sock"), "--log-level", "debug"]);
  t.teardown(() => child.kill("SIGKILL"));
  await until(() => hosts[0]?.link.current != null, 10_000, "handshake with the bundled agent");
  const host = hosts[0] as HostRecord;
  await until(() => host.credits.length === 1);
  t.deepEqual(host.credits, [64]);
  host.link.sendPageRequests([
    { tag: 1, endpoint: 8, pasid: 5, pasidValid: true, groupIndex: 0, pages: [{ address: 0x10000, perm: 3 }], budgetUs: 90_000 },
    { tag: 2, endpoint: 8, pasid: 5, pasidValid: true, groupIndex: 1, pages: [{ address: 0x30000, perm: 1 }], budgetUs: 90_000 },
  ]);
  await until(() => host.responses.length === 2);
  t.deepEqual(host.responses.map((r) => [r.tag, r.code]), [[1, 0], [2, 1]]);

  child.kill("SIGTERM");
  t.is(await exited, 0);
  await until(() => host.downs.length === 1, 10_000, "the goodbye");
  t.regex(host.downs[0] ?? "", /said goodbye \(GOODBYE_SHUTDOWN\): iopf-agent received SIGTERM/);
  const lines = out.stderr.trim().split("\n").map((l) => JSON.parse(l) as { level: string; msg: string });
  t.true(lines.some((l) => l.msg === "session up"), "JSON-lines logs on stderr");
  t.true(lines.some((l) => l.msg === "stopped"));
});
