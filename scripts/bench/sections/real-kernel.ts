// Section 6: the real kernel. One boot of the test VM (Linux 6.12 with
// CONFIG_IOMMUFD_TEST, QEMU TCG) runs real-kernel/guest.ts: faults raised on
// a mock device with IOMMU_TEST_OP_TRIGGER_IOPF, answered on its real fault
// fd first by a C responder, then by the relay path. Under TCG only the
// ratio of the two means anything.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { GUEST_PROJECT_DIR } from "../../vm/initramfs.js";
import { kernelHeaderPaths } from "../../vm/kernel.js";
import { vmPrerequisites } from "../../vm/prerequisites.js";
import { runVm } from "../../vm/qemu.js";
import { ROOT } from "../paths.js";
import { GUEST_RAISER, GUEST_RESPONDER, PROGRESS_PREFIX, REPORT_PREFIX, type GuestReport, type PathFigures, type Plan } from "../real-kernel/protocol.js";
import { BenchContext, loadNow, num, SectionResult, times } from "../section.js";
import { ratio } from "../statistics.js";

const run = promisify(execFile);
/** tsc does not copy .c files: they are compiled from the source tree. */
const C_SOURCES = join(ROOT, "scripts/bench/real-kernel");
const CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11"];
/** A safety net: the VM run takes about a minute; a hung guest must not hold the benchmark. */
const VM_TIMEOUT_MS = 5 * 60_000;
/** A C responder answering at this share of the raise rate or more is taken to be held back by the raiser. */
const RAISER_BOUND = 0.8;

function plan(quick: boolean): Plan {
  return quick
    ? { warmUpFaults: 200, throughputFaults: 1000, latencyFaults: 200, latencyRateHz: 100 }
    : { warmUpFaults: 1000, throughputFaults: 10_000, latencyFaults: 1500, latencyRateHz: 100 };
}

/** raiser.c and responder.c against the 6.12 uAPI headers (the host's are older and lack linux/iommufd.h). */
async function compileGuestPrograms(dir: string): Promise<{ path: string; data: Buffer; mode: number }[]> {
  const { uapiIncludeDirs, iommufdTestHeader } = await kernelHeaderPaths();
  const includes = [...uapiIncludeDirs.map((d) => `-I${d}`), "-iquote", dirname(iommufdTestHeader)];
  const out = [];
  for (const [name, guestPath] of [["raiser", GUEST_RAISER], ["responder", GUEST_RESPONDER]] as const) {
    const bin = join(dir, name);
    try {
      await run("gcc", [...CFLAGS, ...includes, "-o", bin, join(C_SOURCES, `${name}.c`)]);
    } catch (err) {
      throw new Error(`compiling scripts/bench/real-kernel/${name}.c failed: ${(err as { stderr?: string }).stderr ?? String(err)}`);
    }
    out.push({ path: guestPath, data: readFileSync(bin), mode: 0o755 });
  }
  return out;
}

async function measureInVm(ctx: BenchContext, p: Plan): Promise<{ report: GuestReport; bootToInitMs: number | null; vmSeconds: number }> {
  const dir = mkdtempSync(join(tmpdir(), "iopf-bench-real-kernel-"));
  const consoleLog = join(tmpdir(), "iopf-bench-real-kernel.console.log");
  try {
    const files = await compileGuestPrograms(dir);
    ctx.progress(`real-kernel: booting the test VM (QEMU TCG); console in ${consoleLog}`);
    const vm = await runVm({
      script: `cd ${GUEST_PROJECT_DIR} && node build/scripts/bench/real-kernel/guest.js '${JSON.stringify(p)}'`,
      files,
      timeoutMs: VM_TIMEOUT_MS,
      consoleLog,
      onConsoleLine: (line) => {
        if (line.startsWith(PROGRESS_PREFIX)) ctx.progress(`real-kernel: ${line.slice(PROGRESS_PREFIX.length)}`);
      },
    });
    const line = vm.console.split("\n").find((l) => l.startsWith(REPORT_PREFIX));
    if (!line || vm.exitCode !== 0) {
      throw new Error(`real-kernel: expected the guest to print its figures and exit 0, got exit ${vm.exitCode}` +
        `${vm.timedOut ? ` (timed out after ${VM_TIMEOUT_MS} ms)` : ""}; console in ${consoleLog}, its last lines:\n${vm.console.split("\n").slice(-25).join("\n")}`);
    }
    return { report: JSON.parse(line.slice(REPORT_PREFIX.length)) as GuestReport, bootToInitMs: vm.bootToInitMs, vmSeconds: vm.durationMs / 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function realKernel(ctx: BenchContext): Promise<SectionResult> {
  const loadAverage = loadNow();
  const ready = vmPrerequisites();
  if (!ready.ok) throw new Error(`real-kernel: the test VM cannot run: ${ready.reason}; install with: ${ready.installCommand}, or leave the section out with --only`);
  const p = plan(ctx.quick);
  const { report, bootToInitMs, vmSeconds } = await measureInVm(ctx, p);
  const { baseline: c, relay } = report;
  const row = (label: string, pick: (f: PathFigures) => number): string[] =>
    [label, num(pick(c)), num(pick(relay)), times(ratio(pick(relay), pick(c)))];
  return {
    id: "real-kernel",
    title: "Real kernel",
    method: `One boot of the test VM (Linux 6.12 with CONFIG_IOMMUFD_TEST, QEMU TCG, 2 vCPUs). A C raiser (scripts/bench/real-kernel/raiser.c) ` +
      `triggers faults on an IOMMUFD_TEST mock device with IOMMU_TEST_OP_TRIGGER_IOPF (one record per group, each fault its own PASID); the device's ` +
      `real fault fd is answered first by a C responder (responder.c: poll, read, one write of every answer), then by \`iopf-relay\` reading it as ` +
      `\`--fault-fd\` with \`iopf-agent\` (policy handler, answers at once) on a Unix socket; each on a fresh mock device after ${p.warmUpFaults} ` +
      `warm-up faults. Throughput: ${p.throughputFaults} faults raised back to back, first raise to last answer. Latency: ${p.latencyFaults} faults ` +
      `raised at ${p.latencyRateHz}/s, from just before each raise ioctl to its answer, on the guest's CLOCK_REALTIME. The uAPI gives the raiser no ` +
      `sign that a fault was answered (the mock device's page_response does nothing), so the answering side takes the answer time: the C responder ` +
      `right after its write() returns (the kernel completes the group inside it); the relay, for the latency run, in its control server's event ` +
      `stream (\`--control\`, one viewer of "answered" events, stamped in whole milliseconds when the relay decides the answer, which it writes in ` +
      `the same event-loop turn), and for the throughput run when its status first shows every fault answered (polled every 5 ms; the stream ` +
      `drops events for a viewer that falls behind, by design). ` +
      `Under TCG every guest instruction is emulated and the host is shared, so absolute times are meaningless: read the relay / C column.`,
    loadAverage,
    tables: [{
      caption: "The same raiser, the real fault fd: C responder against the relay path (TCG: compare the ratio only)",
      columns: ["measure", "C responder", "relay path", "relay / C"],
      rows: [
        row(`faults answered/s (${p.throughputFaults} back to back)`, (f) => f.answeredPerSec),
        row(`latency p50 us (${p.latencyFaults} at ${p.latencyRateHz}/s)`, (f) => f.p50Us),
        row("latency p90 us", (f) => f.p90Us),
        row("latency p99 us", (f) => f.p99Us),
        row("latency max us", (f) => f.maxUs),
      ],
    }],
    charts: [],
    notes: [
      `The raiser raised ${num(c.raisedPerSec)} faults/s in the C responder's throughput run and ${num(relay.raisedPerSec)}/s in the relay path's` +
        (c.answeredPerSec >= RAISER_BOUND * c.raisedPerSec
          ? ": the C responder kept up with the raiser, so its figure is the raiser's limit (a lower bound of what it can answer) and the ratio an upper bound."
          : "."),
      `The relay wrote ${p.warmUpFaults + p.throughputFaults + p.latencyFaults} answers, all SUCCESS from the agent, none refused by the kernel (its counters at exit).`,
      "The relay's answer times have 1 ms resolution (its events carry Date.now(); the throughput run's last answer is seen within a 5 ms poll); the C responder's 1 us.",
      `VM: boot to /init ${bootToInitMs === null ? "n/a" : `${(bootToInitMs / 1000).toFixed(1)} s`}, the whole VM run ${vmSeconds.toFixed(0)} s.`,
    ],
    data: { plan: p, ...report, bootToInitMs, vmSeconds },
  };
}
