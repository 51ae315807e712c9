// `iopf-relay print-qemu-args`: the forms for QEMU before and after 9.2 and
// for libvirt, and the proof that counts: the installed QEMU takes the
// printed arguments and its chardev connects to a real relay's socket.
import test from "ava";
import { execFileSync, spawn } from "node:child_process";
import { printQemuArgs, qemuArgv, type QemuArgsOptions } from "../../src/relay/control/qemu-args.js";
import { run, RELAY_CLI, startRelay, until } from "./control-harness.js";

const BASE: QemuArgsOptions = { socketPath: "/run/iopf-relay/vm1.sock", qemuVersion: "7.2", reconnectMs: 1000, id: "iopf", format: "shell" };

test("reconnect=SECONDS before QEMU 9.2, reconnect-ms after; commas in paths doubled", (t) => {
  t.deepEqual(qemuArgv(BASE), [
    "-device", "virtio-serial-pci,id=iopf-serial",
    "-chardev", "socket,id=iopf-chr,path=/run/iopf-relay/vm1.sock,reconnect=1",
    "-device", "virtserialport,bus=iopf-serial.0,chardev=iopf-chr,name=org.iopf-relay.0",
  ]);
  t.is(qemuArgv({ ...BASE, qemuVersion: "9.2", reconnectMs: 250 })[3], "socket,id=iopf-chr,path=/run/iopf-relay/vm1.sock,reconnect-ms=250");
  t.is(qemuArgv({ ...BASE, qemuVersion: "10.0" })[3], "socket,id=iopf-chr,path=/run/iopf-relay/vm1.sock,reconnect-ms=1000");
  t.is(qemuArgv({ ...BASE, reconnectMs: 1500 })[3], "socket,id=iopf-chr,path=/run/iopf-relay/vm1.sock,reconnect=2");
  t.is(qemuArgv({ ...BASE, socketPath: "/tmp/a,b.sock" })[3], "socket,id=iopf-chr,path=/tmp/a,,b.sock,reconnect=1");
  t.is(printQemuArgs({ ...BASE, socketPath: "/tmp/it's.sock" }).split(" ")[3], `'socket,id=iopf-chr,path=/tmp/it'\\''s.sock,reconnect=1'`);
  t.regex(printQemuArgs({ ...BASE, format: "libvirt" }), /<source mode='connect' path='\/run\/iopf-relay\/vm1.sock'>\n {4}<reconnect enabled='yes' timeout='1'\/>/);
  t.deepEqual(JSON.parse(printQemuArgs({ ...BASE, format: "json" })), qemuArgv(BASE));
});

test("the command line: --vm names the systemd unit's socket; a missing or doubled target is a usage error", async (t) => {
  const ok = run(t, RELAY_CLI, ["print-qemu-args", "--vm", "vm1", "--qemu-version", "9.2"]);
  t.is(await ok.exited, 0);
  t.regex(ok.stdout(), /-chardev socket,id=iopf-chr,path=\/run\/iopf-relay\/vm1\.sock,reconnect-ms=1000 /);
  const bad = run(t, RELAY_CLI, ["print-qemu-args", "--vm", "vm1", "--socket-path", "/x"]);
  t.is(await bad.exited, 2);
  t.regex(bad.stderr(), /print-qemu-args: expected exactly one of --vm NAME or --socket-path PATH/);
});

test("the installed QEMU accepts the printed arguments and connects to the relay", async (t) => {
  let version: string;
  try {
    version = /version (\d+\.\d+)/.exec(execFileSync("qemu-system-x86_64", ["--version"], { encoding: "utf8" }))?.[1] ?? "";
  } catch {
    t.fail("qemu-system-x86_64 is not installed (node scripts/setup.mjs --for-tests installs it)");
    return;
  }
  const relay = await startRelay(t, { source: "synthetic" });
  const args = qemuArgv({ ...BASE, socketPath: relay.socketPath, qemuVersion: version });
  // A paused machine with no display: only the chardev does anything.
  const qemu = spawn("qemu-system-x86_64", ["-machine", "q35,accel=tcg", "-display", "none", "-monitor", "none", "-serial", "none", "-S", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  qemu.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  t.teardown(() => void qemu.kill("SIGKILL"));
  await until(() => relay.stderr().includes("agent connection accepted") || qemu.exitCode !== null, 15_000, "QEMU's chardev connection");
  t.is(qemu.exitCode, null, `QEMU ${version} refused the arguments: ${stderr}`);
  t.true(relay.stderr().includes("agent connection accepted"));
});
