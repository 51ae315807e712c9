// The mistakes an operator makes when starting iopf-relay: each is one line
// on stderr saying what, why and what to do, printed once, with no stack
// trace, and exit status 1 (2 for a usage error).
import test from "ava";
import { existsSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { RELAY_CLI, run, startRelay, tempDir } from "./control-harness.js";

interface Failure {
  code: number | null;
  stderr: string;
}

async function relay(t: Parameters<typeof run>[0], args: string[]): Promise<Failure> {
  const p = run(t, RELAY_CLI, [...args, "--log-format", "json"]);
  return { code: await p.exited, stderr: p.stderr() };
}

/** One line, starting with the program's name, once; no stack. */
function oneLine(t: { is(a: unknown, b: unknown, m?: string): void; notRegex(s: string, r: RegExp, m?: string): void }, f: Failure, code: number): string {
  t.is(f.code, code, f.stderr);
  const lines = f.stderr.trimEnd().split("\n");
  t.is(lines.length, 1, `one line:\n${f.stderr}`);
  t.notRegex(f.stderr, /^\s+at /m, "no stack trace");
  return lines[0] ?? "";
}

async function busyPort(t: { teardown(f: () => void): void }): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => server.close());
  return (server.address() as AddressInfo).port;
}

test("a socket path in a directory that does not exist says so (libuv reports it as EACCES)", async (t) => {
  const dir = tempDir(t, "iopf-startup-");
  const line = oneLine(t, await relay(t, ["--source", "synthetic", "--socket-path", join(dir, "missing", "vm1.sock")]), 1);
  t.regex(line, /^iopf-relay: unix:.*\/missing\/vm1\.sock: cannot listen: the directory .*\/missing does not exist; create it .*or choose another path$/);
  t.notRegex(line, /EACCES|permission/i);
});

test("a socket path longer than sun_path holds", async (t) => {
  const line = oneLine(t, await relay(t, ["--source", "synthetic", "--socket-path", `/tmp/${"a".repeat(110)}.sock`]), 1);
  t.regex(line, /^iopf-relay: unix:\/tmp\/a+\.sock: the path is 120 bytes; a Unix socket path is limited to 107\. Use a shorter path/);
});

test("a port in use, for the agent's channel and for the control server", async (t) => {
  const port = await busyPort(t);
  const dir = tempDir(t, "iopf-startup-");
  const link = oneLine(t, await relay(t, ["--source", "synthetic", "--listen", `tcp:127.0.0.1:${port}`]), 1);
  t.regex(link, new RegExp(`^iopf-relay: tcp:127\\.0\\.0\\.1:${port}: cannot listen: the port is in use by another process .*; stop it or choose another port$`));
  const control = oneLine(t, await relay(t, ["--source", "synthetic", "--socket-path", join(dir, "r.sock"), "--control", `tcp:127.0.0.1:${port}`]), 1);
  t.regex(control, new RegExp(`^iopf-relay: control server: tcp:127\\.0\\.0\\.1:${port}: cannot listen: the port is in use by another process .*--control tcp:127\\.0\\.0\\.1:PORT$`));
});

test("a second relay on the same socket, and a path that is not a socket", async (t) => {
  const first = await startRelay(t, { source: "synthetic" });
  const second = oneLine(t, await relay(t, ["--source", "synthetic", "--socket-path", first.socketPath]), 1);
  t.regex(second, /^iopf-relay: unix:.*\/relay\.sock: another process is listening on this socket \(another relay for this VM\?\); stop it or choose another path\.$/);
  const file = join(first.dir, "not-a-socket");
  writeFileSync(file, "keep me\n");
  const notSocket = oneLine(t, await relay(t, ["--source", "synthetic", "--socket-path", file]), 1);
  t.regex(notSocket, /^iopf-relay: unix:.*\/not-a-socket: the path exists and is not a socket; refusing to replace it\. Remove it or choose another path\.$/);
});

test("--fd with a number that is not an open descriptor, or not a socket", async (t) => {
  const closed = oneLine(t, await relay(t, ["--source", "synthetic", "--fd", "99"]), 1);
  t.regex(closed, /^iopf-relay: --fd 99: not an open file descriptor of this process; .*pass the agent's connected socket as fd 99/);
  // fd 0 is the test's /dev/null (stdio "ignore"): open, but no socket.
  const notSocket = oneLine(t, await relay(t, ["--source", "synthetic", "--fd", "0"]), 1);
  t.regex(notSocket, /^iopf-relay: --fd 0: expected a connected socket, got a character device; /);
});

test("--iommufd without /dev/iommu", async (t) => {
  if (existsSync("/dev/iommu")) {
    t.log("this machine has /dev/iommu: the relay would open it; the missing-device case cannot be shown here");
    t.pass();
    return;
  }
  const dir = tempDir(t, "iopf-startup-");
  const config = join(dir, "vm1.json");
  writeFileSync(config, JSON.stringify({ viommu: "virtio-iommu", devices: [{ devId: 1, endpointId: 8 }] }));
  const line = oneLine(t, await relay(t, ["--iommufd", "--config", config, "--socket-path", join(dir, "r.sock")]), 1);
  t.regex(line, /^iopf-relay: --iommufd: \/dev\/iommu does not exist: this kernel has no iommufd .*; .*--source emulator/);
});

test("a usage error is one line too, exit 2", async (t) => {
  const line = oneLine(t, await relay(t, ["--source", "synthetic"]), 2);
  t.is(line, "iopf-relay: no channel to the agent: give one of --socket-path, --listen, --connect, --fd; run iopf-relay --help for the options");
});

test("a handoff socket in a directory that does not exist, with or without the keeper: one line, and no 'relay ready' before it", async (t) => {
  const dir = tempDir(t, "iopf-startup-");
  const config = join(dir, "vm1.json");
  writeFileSync(config, JSON.stringify({ viommu: "virtio-iommu", devices: [] }));
  for (const keeper of [[], ["--keeper"]]) {
    const args = [...keeper, "--config", config, "--socket-path", join(dir, "r.sock"), "--handoff", `unix:${join(dir, "missing", "handoff.sock")}`];
    const line = oneLine(t, await relay(t, args), 1);
    t.regex(line, /^iopf-relay: handoff socket: cannot listen on unix:.*\/missing\/handoff\.sock: the directory .*\/missing does not exist; create it .*or choose another path$/, keeper.join(" "));
  }
});
