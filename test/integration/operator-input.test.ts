// What an operator can hand the relay by mistake: an fd that is not a fault
// fd (/dev/zero, a socket, a closed fd), a config that never ends, an absurd
// rate. Each is refused at start with one line and an exit code, before
// anything is read. And a stream source whose other end goes away is an
// error the relay reports (log, /healthz), not a crash.
import test from "ava";
import { spawn } from "node:child_process";
import { closeSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";
import { httpGet, RELAY_CLI, tempDir, until } from "./control-harness.js";

const CONFIG = JSON.stringify({ viommu: "virtio-iommu", devices: [{ devId: 1, endpointId: 1 }] });

/** Runs the relay with `extra` as its fd 3 and returns its exit code and stderr. */
function relayWith(t: Parameters<typeof tempDir>[0], args: string[], fd3: number | "ignore" = "ignore"): Promise<{ code: number | null; stderr: string }> {
  const dir = tempDir(t, "iopf-input-");
  writeFileSync(join(dir, "relay.json"), CONFIG);
  const child = spawn(process.execPath, [RELAY_CLI, "--socket-path", join(dir, "s.sock"), "--config", join(dir, "relay.json"), ...args], { stdio: ["ignore", "ignore", "pipe", fd3] });
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, stderr })));
}

const oneLine = (s: string): boolean => s.trim().split("\n").length <= 2 && !/\n\s+at /.test(s);

test("--fault-fd on /dev/zero is refused: it is not a fault fd", async (t) => {
  const zero = openSync("/dev/zero", "r");
  try {
    const r = await relayWith(t, ["--fault-fd", "3"], zero);
    t.is(r.code, 1);
    t.regex(r.stderr, /--fault-fd 3: fd 3 is \/dev\/zero, not an iommufd fault fd \(anon_inode:\[iommufd-pgfault\]\)/);
    t.true(oneLine(r.stderr), r.stderr);
  } finally {
    closeSync(zero);
  }
});

test("--fault-fd on a socket or a closed fd is refused", async (t) => {
  const socket = await relayWith(t, ["--fault-fd", "3"], "pipe" as never);
  t.is(socket.code, 1);
  t.regex(socket.stderr, /fd 3 is socket:\[\d+\], not an iommufd fault fd/);
  const closed = await relayWith(t, ["--fault-fd", "900"]);
  t.is(closed.code, 1);
  t.regex(closed.stderr, /--fault-fd 900: fd 900 is not open in this process/);
  t.true(oneLine(closed.stderr), closed.stderr);
});

test("--config /dev/zero is refused without reading it all; --rate 1e20 is a usage error", async (t) => {
  const zero = await relayWith(t, ["--source", "synthetic", "--config", "/dev/zero"]);
  t.is(zero.code, 1);
  t.regex(zero.stderr, /\/dev\/zero: expected a config file of at most 1048576 bytes, got more/);
  const rate = await relayWith(t, ["--source", "synthetic", "--rate", "1e20"]);
  t.is(rate.code, 2);
  t.regex(rate.stderr, /--rate: expected an integer 0\.\.1000000, got "1e20"/);
  const big = await relayWith(t, ["--source", "synthetic", "--rate", "100000000000000000000"]);
  t.is(big.code, 2);
});

test("a stream source whose emulator goes away: an error in the log and in /healthz, the relay runs on and stops cleanly", async (t) => {
  const emulator = await KernelEmulator.start();
  const dir = tempDir(t, "iopf-gone-");
  writeFileSync(join(dir, "relay.json"), CONFIG);
  const child = spawn(process.execPath, [RELAY_CLI, "--emulator-fd", "3", "--socket-path", join(dir, "s.sock"), "--config", join(dir, "relay.json"),
    "--control", "tcp:127.0.0.1:0", "--log-format", "json", "--source", "synthetic"], { stdio: ["ignore", "ignore", "pipe", emulator.faultFd] });
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  t.teardown(() => void child.kill("SIGKILL"));
  await until(() => /"msg":"relay ready"/.test(stderr), 20_000, "the relay");
  const control = /"msg":"control server listening","on":"([^"]+)"/.exec(stderr)![1]!;
  t.is((await httpGet(control, "/healthz")).status, 200);
  await emulator.quit();
  await emulator.close();
  await until(() => /"level":"error".*a fault source went away/.test(stderr), 10_000, "the error line");
  const health = await httpGet(control, "/healthz");
  t.is(health.status, 503);
  t.regex(health.body, /fault source failed: emulator-fd:3: .*the stream ended/);
  child.kill("SIGTERM");
  t.is(await exited, 0, stderr);
  t.notRegex(stderr, /EPIPE|at .*\.js:\d+/, "no crash, no stack");
});
