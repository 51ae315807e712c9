// The agent finding its port by name in a sysfs tree that appears after it
// started, and opening it with the chardev transport. A pty stands in for the
// virtio-serial port: a small Python program holds the pty's master end and
// relays it to a Unix socket where a HostLink plays the relay, reconnecting
// when that relay goes away, as QEMU's chardev would for a new relay.
import test from "ava";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Agent } from "../../guest-agent/agent.js";
import { AgentConfig, defaultConfig } from "../../guest-agent/config.js";
import { silentLogger } from "../../guest-agent/log.js";
import type { ByteStream } from "../../src/link/transport/byte-stream.js";
import { UnixListener } from "../../src/link/transport/unix.js";
import { FAST_TIMERS, HostRecord, makeHost } from "../support/link-peers.js";
import { until } from "../support/memory-stream.js";

const PTY_RELAY = String.raw`
import os, select, socket, sys, time, tty
master, slave = os.openpty()
tty.setraw(slave)
print(os.ttyname(slave), flush=True)
while True:
    sock = socket.socket(socket.AF_UNIX)
    while True:
        try:
            sock.connect(sys.argv[1])
            break
        except OSError:
            time.sleep(0.02)
    while True:
        ready, _, _ = select.select([master, sock], [], [])
        if master in ready:
            sock.sendall(os.read(master, 65536))
        if sock in ready:
            data = sock.recv(65536)
            if not data:
                break
            os.write(master, data)
    sock.close()
`;

const NAME = "org.iopf-relay.test";

function request(tag: number) {
  return { tag, endpoint: 8, pasid: 5, pasidValid: true, groupIndex: tag, pages: [{ address: 0x10000, perm: 1 }], budgetUs: 90_000 };
}

test("a port that appears late is found by name, opened, and survives garbage and a relay restart", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "agent-port-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const hosts: HostRecord[] = [];
  const streams: ByteStream[] = [];
  let junk: Buffer | null = null;
  const listener = await UnixListener.listen(join(dir, "relay.sock"));
  t.teardown(() => listener.close());
  listener.on("connection", (stream) => {
    streams.push(stream);
    if (junk) stream.write(junk);
    const host = makeHost(stream);
    hosts.push(host);
    host.link.start();
  });

  const config: AgentConfig = {
    ...defaultConfig(),
    port: { ...defaultConfig().port, name: NAME, sysfsRoot: join(dir, "sys"), devRoot: join(dir, "dev") },
    appSocket: null,
    handlers: [{ handler: "policy", rules: [{ start: 0, end: 2 ** 40, perm: 7, answer: "success" }], otherwise: "invalid" }],
    retryMinMs: 10,
    retryMaxMs: 80,
  };
  const agent = await Agent.start({ config, log: silentLogger, resyncTimers: FAST_TIMERS });
  t.teardown(() => agent.stop());
  await new Promise((resolve) => setTimeout(resolve, 150));
  t.is(agent.current, null, "no port yet");

  const relay = spawn("python3", ["-c", PTY_RELAY, join(dir, "relay.sock")], { stdio: ["ignore", "pipe", "inherit"] });
  t.teardown(() => relay.kill());
  const pts = await new Promise<string>((resolve) => createInterface({ input: relay.stdout }).once("line", resolve));
  // The port shows up: its sysfs directory with a name, and its device node.
  mkdirSync(join(dir, "sys", "class", "virtio-ports", "vport9p1"), { recursive: true });
  mkdirSync(join(dir, "sys", "class", "virtio-ports", "vport9p0"), { recursive: true });
  writeFileSync(join(dir, "sys", "class", "virtio-ports", "vport9p0", "name"), "org.qemu.guest_agent.0\n");
  mkdirSync(join(dir, "dev"));
  symlinkSync(pts, join(dir, "dev", "vport9p1"));
  writeFileSync(join(dir, "sys", "class", "virtio-ports", "vport9p1", "name"), `${NAME}\n`);

  await until(() => hosts[0]?.link.current != null, 10_000, "a session over the pty");
  t.regex(agent.current?.link.description ?? "", /chardev:.*vport9p1/);
  const first = hosts[0] as HostRecord;
  first.link.sendPageRequests([request(1)]);
  await until(() => first.responses.length === 1);

  // The relay restarts; the new one's first bytes are garbage. The port stays open throughout.
  junk = Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 97 + 11) & 0xff));
  (streams[0] as ByteStream).destroy();
  await until(() => hosts[1]?.link.current != null, 10_000, "a session with the restarted relay");
  const second = hosts[1] as HostRecord;
  second.link.sendPageRequests([request(1), request(2)]);
  await until(() => second.responses.length === 2);
  t.deepEqual(second.responses.map((r) => r.tag).sort(), [1, 2]);
  t.is(first.responses.length, 1);
  t.is(agent.counters.get("sessions"), 2);
});
