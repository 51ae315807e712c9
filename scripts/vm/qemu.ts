// Boots the test guest under QEMU (TCG) with the cached kernel and
// initramfs, runs one job script in it, and reports how it ended. Each call
// is independent (own temp dir, caller's own sockets), so VMs can run side by side.
import { spawn } from "node:child_process";
import { copyFileSync, appendFileSync, mkdtempSync, readFileSync, rmSync, createWriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureKernel } from "./kernel.js";
import { ensureBaseInitramfs, writeJobCpio, type JobFile } from "./initramfs.js";

export interface VmPort {
  /** The virtio-serial port name the guest sees in /sys/class/virtio-ports/NAME/name. */
  name: string;
  /** Host Unix socket path of the port's chardev. */
  socketPath: string;
  /**
   * true: QEMU listens on socketPath (server=on,wait=off) and the host test
   * connects; false: QEMU connects to a host listener and retries every
   * second until it is there (reconnect=1; QEMU 7.2 has no reconnect-ms).
   */
  server: boolean;
}

export interface RunVmOptions {
  /** /job/run.sh: any busybox sh script; its exit status is the VM's exitCode. */
  script: string;
  files?: JobFile[];
  ports?: VmPort[];
  memoryMiB?: number;
  timeoutMs?: number;
  /** Where the guest console (serial) goes; kept after the run. */
  consoleLog?: string;
  /** Called with each console line as it arrives, while the VM runs. */
  onConsoleLine?: (line: string) => void;
  /** Extra kernel command-line arguments. */
  kernelArgs?: string[];
  /**
   * Stops the VM (QEMU gets SIGTERM) when aborted: for a VM that serves
   * another one until that one is done, and so never runs its job to the end.
   */
  signal?: AbortSignal;
}

export interface VmResult {
  /** From the guest's last "IOPF-VM-EXIT <code>" line; null if it never came (crash, timeout). */
  exitCode: number | null;
  console: string;
  timedOut: boolean;
  /** The caller's signal stopped the VM. */
  stopped: boolean;
  /** From spawning QEMU to its exit. */
  durationMs: number;
  /** From spawning QEMU to /init's first line; null if /init never ran. */
  bootToInitMs: number | null;
  /** The guest's own uptime when /init started, in ms (kernel boot without QEMU/firmware start-up). */
  guestUptimeAtInitMs: number | null;
}

const DEFAULT_MEMORY_MIB = 1024;
const DEFAULT_TIMEOUT_MS = 5 * 60_000;
const EXIT_LINE = /^IOPF-VM-EXIT (\d+)$/;
const INIT_LINE = /^IOPF-VM-INIT uptime=([\d.]+)$/;

/**
 * One virtio-serial port in each of two VMs, joined by one Unix socket with
 * no host process between: the first VM's QEMU listens on socketPath, the
 * second's connects (retrying every second until the first is up).
 */
export function wiredPorts(name: string, socketPath: string): [VmPort, VmPort] {
  return [{ name, socketPath, server: true }, { name, socketPath, server: false }];
}

function qemuArgs(bzImage: string, initrd: string, opts: RunVmOptions): string[] {
  const args = [
    "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-smp", "2",
    "-m", String(opts.memoryMiB ?? DEFAULT_MEMORY_MIB),
    "-nographic", "-no-reboot",
    "-kernel", bzImage, "-initrd", initrd,
    // panic=-1 reboots at once on a panic, and -no-reboot turns that into an exit.
    "-append", ["console=ttyS0", "panic=-1", ...(opts.kernelArgs ?? [])].join(" "),
    "-device", "virtio-iommu-pci",
  ];
  const ports = opts.ports ?? [];
  if (ports.length > 0) args.push("-device", "virtio-serial-pci,id=vser0");
  ports.forEach((p, i) => {
    if (/[,=]/.test(p.socketPath) || /[,=]/.test(p.name)) {
      throw new Error(`virtio-serial port ${p.name} at ${p.socketPath}: QEMU option values cannot contain "," or "="; choose another path or name`);
    }
    const mode = p.server ? "server=on,wait=off" : "reconnect=1";
    args.push("-chardev", `socket,id=port${i},path=${p.socketPath},${mode}`,
      "-device", `virtserialport,bus=vser0.0,chardev=port${i},name=${p.name}`);
  });
  return args;
}

/** Boots a guest, runs opts.script as /job/run.sh, and resolves when QEMU exits or the timeout kills it. */
export async function runVm(opts: RunVmOptions): Promise<VmResult> {
  const { bzImage } = await ensureKernel();
  const base = await ensureBaseInitramfs();
  const work = mkdtempSync(join(tmpdir(), "iopf-vm-"));
  try {
    // QEMU 7.2 takes one -initrd file: the base image with the job archive after it.
    const initrd = join(work, "initrd.cpio");
    const job = join(work, "job.cpio");
    writeJobCpio(job, opts.script, opts.files);
    copyFileSync(base, initrd);
    appendFileSync(initrd, readFileSync(job));
    return await boot(qemuArgs(bzImage, initrd, opts), opts);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function boot(args: string[], opts: RunVmOptions): Promise<VmResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const qemu = spawn("qemu-system-x86_64", args, { stdio: ["ignore", "pipe", "pipe"] });
    const log = opts.consoleLog ? createWriteStream(opts.consoleLog) : undefined;
    const lines: string[] = [];
    let partial = "";
    let exitCode: number | null = null;
    let bootToInitMs: number | null = null;
    let guestUptimeAtInitMs: number | null = null;
    let timedOut = false;
    let stopped = false;
    let stderr = "";

    const onLine = (raw: string) => {
      const line = raw.replace(/\r$/, "");
      lines.push(line);
      const exit = EXIT_LINE.exec(line);
      if (exit) exitCode = Number(exit[1]);
      const init = INIT_LINE.exec(line);
      if (init && bootToInitMs === null) {
        bootToInitMs = Date.now() - started;
        guestUptimeAtInitMs = Math.round(Number(init[1]) * 1000);
      }
      opts.onConsoleLine?.(line);
    };
    qemu.stdout.on("data", (chunk: Buffer) => {
      log?.write(chunk);
      const parts = (partial + chunk.toString("utf8")).split("\n");
      partial = parts.pop() ?? "";
      parts.forEach(onLine);
    });
    qemu.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
      log?.write(chunk);
    });

    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const timer = setTimeout(() => {
      timedOut = true;
      log?.write(`\n[host] VM timed out after ${timeoutMs} ms; QEMU killed\n`);
      qemu.kill("SIGKILL");
    }, timeoutMs);

    const onAbort = (): void => {
      stopped = true;
      log?.write("\n[host] VM stopped by the caller\n");
      qemu.kill("SIGTERM");
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });

    qemu.on("error", (e) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      log?.end();
      reject(new Error(`could not start qemu-system-x86_64: ${e.message}; install it with: apt-get install -y --no-install-recommends qemu-system-x86`));
    });
    qemu.on("close", (code, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (partial) onLine(partial);
      log?.end();
      const durationMs = Date.now() - started;
      // QEMU exits 0 after the guest's poweroff; anything else before /init ran
      // is a host-side problem (bad option, missing file), not a guest result.
      if (!timedOut && !stopped && code !== 0 && bootToInitMs === null) {
        return reject(new Error(`qemu-system-x86_64 exited with ${signal ?? code} before the guest ran /init, expected a boot; ` +
          `stderr:\n${stderr.trim()}\ncommand: qemu-system-x86_64 ${args.join(" ")}`));
      }
      resolve({ exitCode, console: lines.join("\n"), timedOut, stopped, durationMs, bootToInitMs, guestUptimeAtInitMs });
    });
  });
}
