// scripts/libvirt/qemu-hook, run as libvirt runs it, with a systemctl on PATH
// that records what it was asked: it starts iopf-relay@DOMAIN at "prepare"
// and stops it at "release", only for domains that have a device map.
import test from "ava";
import { execFileSync } from "node:child_process";
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot } from "../../scripts/vm/paths.js";

const HOOK = join(projectRoot, "scripts", "libvirt", "qemu-hook");

test("starts the relay before the domain's QEMU and stops it after, for domains with a device map", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "iopf-hook-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const calls = join(dir, "calls");
  writeFileSync(join(dir, "systemctl"), `#!/bin/sh\necho "$*" >> ${calls}\n`);
  chmodSync(join(dir, "systemctl"), 0o755);
  writeFileSync(join(dir, "vm-1.json"), "{}");
  // libvirt writes the domain XML on stdin; the hook does not read it, so it gets a file, not a pipe that could break.
  writeFileSync(join(dir, "domain.xml"), "<domain/>");
  const xml = openSync(join(dir, "domain.xml"), "r");
  t.teardown(() => closeSync(xml));
  const hook = (...args: string[]): string => execFileSync("/bin/sh", [HOOK, ...args], {
    stdio: [xml, "pipe", "pipe"], encoding: "utf8",
    env: { PATH: `${dir}:/usr/bin:/bin`, IOPF_RELAY_CONFIG_DIR: dir },
  });
  const recorded = (): string[] => (existsSync(calls) ? readFileSync(calls, "utf8").split("\n").filter((l) => l) : []);

  for (const op of ["prepare", "start", "started", "stopped", "release"]) hook("vm-1", op, op === "release" ? "end" : "begin", "-");
  t.deepEqual(recorded(), ["start iopf-relay@vm-1.service", "stop iopf-relay@vm-1.service"]);
  hook("other", "prepare", "begin", "-");
  hook("other", "release", "end", "-");
  t.is(recorded().length, 2, "a domain without /etc/iopf-relay/NAME.json is left alone");
});
