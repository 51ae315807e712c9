// Smoke test of the VM layer: one boot checks that the guest has what the
// end-to-end tests rely on (node, /dev/iommu, the iommufd selftest, a named
// virtio-serial port) and that bytes cross the port both ways.
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runVm } from "../../scripts/vm/qemu.js";
import { vmTest } from "../../scripts/vm/vm-test.js";

const PORT_NAME = "org.iopf-relay.0";

const JOB = `set -e
echo "CHECK node $(node -e 'process.stdout.write(process.version)')"
test -c /dev/iommu && echo "CHECK dev-iommu"
node /job/test-cmd.mjs
for d in /sys/class/virtio-ports/*; do echo "CHECK port $(basename "$d") $(cat "$d/name")"; done
node /job/echo.mjs ${PORT_NAME}
`;

// Finds the port by name as the agent will, then echoes one line back.
// read() gives 0 while the host end is not connected, so it retries.
const ECHO = `import { openSync, readFileSync, readdirSync, readSync, writeSync } from "node:fs";
const dir = "/sys/class/virtio-ports";
const name = process.argv[2];
const port = readdirSync(dir).find((p) => readFileSync(dir + "/" + p + "/name", "utf8").trim() === name);
if (!port) { console.error("no port named " + name + " in " + dir); process.exit(1); }
const fd = openSync("/dev/" + port, "r+");
console.log("PORT-READY /dev/" + port);
const buf = Buffer.alloc(256);
let got = "";
while (!got.includes("\\n")) {
  const n = readSync(fd, buf);
  if (n === 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  got += buf.toString("utf8", 0, n);
}
writeSync(fd, "pong:" + got);
console.log("PORT-ECHOED " + got.trim());
`;

// IOMMU_TEST_CMD with an unknown op: the selftest answers EOPNOTSUPP (95);
// without IOMMUFD_TEST, /dev/iommu does not know the ioctl (ENOTTY, 25).
// (Its debugfs directory, fail_iommufd, would also need FAULT_INJECTION_DEBUG_FS.)
// Goes through ffi-rs as the relay does, which also proves the native addon loads.
const TEST_CMD = `import { createRequire } from "node:module";
const { DataType, load, open } = createRequire("/opt/iopf-relay/package.json")("ffi-rs");
open({ library: "c", path: "libc.so.6" });
const call = (funcName, paramsType, paramsValue) =>
  load({ library: "c", funcName, retType: DataType.I32, paramsType, paramsValue, errno: true });
const fd = call("open", [DataType.String, DataType.I32], ["/dev/iommu", 2]);
if (fd.value < 0) { console.error("open /dev/iommu: errno " + fd.errnoCode); process.exit(1); }
const IOMMU_TEST_CMD = 0x3ba0; // _IO(';', 0x80 + 32)
const cmd = Buffer.alloc(72);
cmd.writeUInt32LE(72, 0);     // size
cmd.writeUInt32LE(0xffff, 4); // op: none that exists
const r = call("ioctl", [DataType.I32, DataType.U64, DataType.U8Array], [fd.value, IOMMU_TEST_CMD, cmd]);
console.log("CHECK iommufd-test-cmd " + (r.value === -1 ? "errno=" + r.errnoCode : "returned " + r.value));
`;

/** Sends ping once the guest has the port open; resolves with the whole reply line. */
function pingWhenReady(socketPath: string, ping: string): { onLine: (line: string) => void; reply: Promise<string> } {
  let socket: Socket | undefined;
  let onLine: (line: string) => void = () => {};
  const reply = new Promise<string>((resolve, reject) => {
    onLine = (line) => {
      if (!line.startsWith("PORT-READY") || socket) return;
      let received = "";
      socket = connect(socketPath, () => socket!.write(`${ping}\n`));
      socket.on("data", (d) => {
        received += d.toString("utf8");
        if (received.includes("\n")) {
          resolve(received.trim());
          socket!.end();
        }
      });
      socket.on("error", reject);
    };
  });
  return { onLine: (line) => onLine(line), reply };
}

vmTest("boots the test guest with node, iommufd selftest and a virtio-serial port", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "iopf-boot-test-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = join(dir, "port0.sock");
  const ping = `ping-${process.pid}-${Date.now()}`;
  const host = pingWhenReady(socketPath, ping);

  const started = Date.now();
  const result = await runVm({
    script: JOB,
    files: [{ path: "echo.mjs", data: ECHO }, { path: "test-cmd.mjs", data: TEST_CMD }],
    ports: [{ name: PORT_NAME, socketPath, server: true }],
    consoleLog: join(tmpdir(), "iopf-relay-boot-test.console.log"),
    onConsoleLine: host.onLine,
    timeoutMs: 4 * 60_000,
  });
  t.log(`QEMU start to /init: ${result.bootToInitMs} ms (guest uptime at /init: ${result.guestUptimeAtInitMs} ms); ` +
    `whole VM run: ${result.durationMs} ms; test: ${Date.now() - started} ms`);

  const why = `console (also in ${join(tmpdir(), "iopf-relay-boot-test.console.log")}):\n${result.console.split("\n").slice(-40).join("\n")}`;
  t.false(result.timedOut, `the VM timed out; ${why}`);
  t.is(result.exitCode, 0, `expected the job to exit 0; ${why}`);
  const checks = result.console.split("\n").filter((l) => l.startsWith("CHECK "));
  t.truthy(checks.find((l) => /^CHECK node v\d+\./.test(l)), `node did not run in the guest; ${why}`);
  t.true(checks.includes("CHECK dev-iommu"), `/dev/iommu is missing; ${why}`);
  t.true(checks.includes("CHECK iommufd-test-cmd errno=95"),
    `expected IOMMU_TEST_CMD with an unknown op to fail EOPNOTSUPP (95); ENOTTY (25) means IOMMUFD_TEST is off; ${why}`);
  t.truthy(checks.find((l) => /^CHECK port vport\d+p\d+ /.test(l) && l.endsWith(` ${PORT_NAME}`)),
    `no /sys/class/virtio-ports/*/name reads ${PORT_NAME}; ${why}`);
  // The guest wrote the reply before it powered off; allow the host socket a moment to deliver it.
  const noReply = new Promise<string>((resolve) => setTimeout(() => resolve("(no reply from the guest)"), 2000).unref());
  t.is(await Promise.race([host.reply, noReply]), `pong:${ping}`, `the port round trip failed; ${why}`);
});
