// The installed systemd units and udev rules, checked as far as a machine
// without a running systemd or udevd allows: systemd-analyze verify on the
// units as install.mjs wrote them (it also checks that the programs they run
// exist), and udev's own rule engine (udevadm test) on a made-up sysfs in a
// private mount namespace, so that nothing of the host's /dev, /sys or /run
// is touched. That the service really starts when a port appears in a guest
// running systemd is not proven here (docs/guest-agent.md says so).
import test from "ava";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_PORT_NAME } from "../../guest-agent/config.js";
import { installWithScript, runTo, tempDir } from "./install-support.js";

const PORT_LINK = `/dev/virtio-ports/${DEFAULT_PORT_NAME}`;

test("systemd-analyze verify accepts the installed host template and guest unit, with no warning", async (t) => {
  const prefix = await installWithScript(t);
  const units = join(prefix, "lib", "systemd", "system");
  // A template is verified through an instance of it.
  symlinkSync("iopf-relay@.service", join(units, "iopf-relay@vm1.service"));
  for (const unit of ["iopf-relay@vm1.service", "iopf-agent.service"]) {
    const r = await runTo("systemd-analyze", ["verify", "--man=no", join(units, unit)]);
    t.deepEqual([r.code, r.stderr], [0, ""], `systemd-analyze verify ${unit}`);
  }
  const host = readFileSync(join(units, "iopf-relay@.service"), "utf8");
  for (const line of ["Type=notify", "NotifyAccess=all", "User=iopf-relay", "Restart=on-failure"]) t.regex(host, new RegExp(`^${line}$`, "m"));
  t.regex(host, /--socket-mode 0660/);
  t.notRegex(host, /--journal/);
});

test("the guest unit binds to the device unit of the agent's port link, escaped as systemd names it", async (t) => {
  const unit = readFileSync(join(await installWithScript(t), "lib", "systemd", "system", "iopf-agent.service"), "utf8");
  const device = `${execFileSync("systemd-escape", ["--path", PORT_LINK], { encoding: "utf8" }).trim()}.device`;
  t.is(device, "dev-virtio\\x2dports-org.iopf\\x2drelay.0.device");
  t.regex(unit, new RegExp(`^BindsTo=${device.replaceAll("\\", "\\\\").replaceAll(".", "\\.")}$`, "m"));
  t.regex(unit, new RegExp(`^After=${device.replaceAll("\\", "\\\\").replaceAll(".", "\\.")}$`, "m"));
});

/** udevadm test of one made-up device, with only the installed rules added to the system's, in a private mount namespace. */
function udevTest(rulesDir: string, sysfs: string, devpath: string, groupFile: string): string {
  const script = [
    "set -e",
    `mount --bind ${sysfs} /sys`,
    "mkdir -p /run/udev && mount -t tmpfs none /run/udev && mkdir /run/udev/rules.d",
    `cp ${rulesDir}/*.rules /run/udev/rules.d/`,
    `mount --bind ${groupFile} /etc/group`,
    // udevadm test creates device links: let it create them in a scratch /dev.
    "mount -t tmpfs none /dev",
    `exec udevadm test --action=add /sys${devpath} 2>&1`,
  ].join("\n");
  // sd-device refuses a syspath not on a real sysfs unless told this is a test.
  return execFileSync("unshare", ["-m", "sh", "-c", script], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, SYSTEMD_DEVICE_VERIFY_SYSFS: "0" } });
}

/** A char device in a made-up sysfs: its directory, uevent, attributes and subsystem link. */
function fakeDevice(sysfs: string, subsystem: string, name: string, major: number, minor: number, attrs: Record<string, string> = {}): string {
  const devpath = `/devices/virtual/${subsystem}/${name}`;
  const dir = join(sysfs, devpath);
  mkdirSync(dir, { recursive: true });
  mkdirSync(join(sysfs, "class", subsystem), { recursive: true });
  writeFileSync(join(dir, "uevent"), `MAJOR=${major}\nMINOR=${minor}\nDEVNAME=${name}\n`);
  writeFileSync(join(dir, "dev"), `${major}:${minor}\n`);
  for (const [k, v] of Object.entries(attrs)) writeFileSync(join(dir, k), `${v}\n`);
  symlinkSync(`../../../../class/${subsystem}`, join(dir, "subsystem"));
  return devpath;
}

test("udev: the port named org.iopf-relay.0 pulls in iopf-agent.service and gets the link the unit binds to; /dev/iommu goes to the group iopf-relay", async (t) => {
  const prefix = await installWithScript(t);
  const rules = join(prefix, "lib", "udev", "rules.d");
  const dir = tempDir(t, "iopf-udev-");
  const sysfs = join(dir, "sys");
  const port = fakeDevice(sysfs, "virtio-ports", "vport0p1", 244, 1, { name: DEFAULT_PORT_NAME });
  const other = fakeDevice(sysfs, "virtio-ports", "vport0p2", 244, 2, { name: "org.qemu.guest_agent.0" });
  const iommu = fakeDevice(sysfs, "misc", "iommu", 10, 123);
  const group = join(dir, "group");
  writeFileSync(group, `${readFileSync("/etc/group", "utf8")}iopf-relay:x:987:\n`);

  const ours = udevTest(rules, sysfs, port, group);
  t.regex(ours, /^SYSTEMD_WANTS=iopf-agent\.service$/m);
  t.regex(ours, /^TAGS=.*:systemd:/m);
  t.regex(ours, new RegExp(`^DEVLINKS=(.* )?${PORT_LINK.replaceAll(".", "\\.")}( |$)`, "m"));
  t.notRegex(udevTest(rules, sysfs, other, group), /SYSTEMD_WANTS=iopf-agent/, "another port starts nothing");
  const dev = udevTest(rules, sysfs, iommu, group);
  t.regex(dev, /60-iopf-relay-iommu\.rules:\d+ GROUP 987/);
  t.regex(dev, /60-iopf-relay-iommu\.rules:\d+ MODE 0660/);
});
