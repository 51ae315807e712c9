// Runs inside the test VM: counts the kernel's calls of iopf_group_response()
// (drivers/iommu/io-pgfault.c), the one function through which every fault
// group gets its answer: a {cookie, code} written to the fault fd, and the
// kernel's own INVALID answers when a device is detached or its HWPT replaced
// and when the fault object is destroyed (drivers/iommu/iommufd/fault.c). The
// IOMMUFD_TEST mock device ignores the answers it gets, and a repeated answer
// fails with EINVAL without reaching this function, so the count is how a test
// proves, from the kernel's side, that each group raised was answered once.
//
// It uses ftrace's function profiler (CONFIG_FUNCTION_PROFILER, in
// scripts/vm/guest-kernel.config): set_ftrace_filter limits it to the one
// function, and trace_stat/function<cpu> lists each CPU's hits. One counter
// at a time per guest: starting one resets the profiler's counts.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const RESPONSE_FUNCTION = "iopf_group_response";
const TRACEFS = "/sys/kernel/tracing";
const ENABLED = join(TRACEFS, "function_profile_enabled");
const FILTER = join(TRACEFS, "set_ftrace_filter");
const STATS = join(TRACEFS, "trace_stat");

export interface KernelResponseCounter {
  /** Calls of iopf_group_response() since start, summed over every CPU. */
  count(): number;
  /** Stops the profiler and clears the filter; count() then fails. */
  stop(): void;
}

function mountTracefs(): void {
  if (existsSync(ENABLED)) return;
  execFileSync("mount", ["-t", "tracefs", "tracefs", TRACEFS], { stdio: ["ignore", "ignore", "pipe"] });
  if (!existsSync(ENABLED)) {
    throw new Error(`${ENABLED} is missing after mounting tracefs: the guest kernel needs CONFIG_FUNCTION_PROFILER ` +
      "(scripts/vm/guest-kernel.config); delete the cached kernel if the fragment has it");
  }
}

function hitsIn(file: string): number {
  // "  iopf_group_response    <hits>    <time> ..." (a name is cut to 30 characters; this one is shorter).
  const line = readFileSync(file, "utf8").split("\n").find((l) => l.trim().split(/\s+/)[0] === RESPONSE_FUNCTION);
  return line === undefined ? 0 : Number(line.trim().split(/\s+/)[1]);
}

/** Mounts tracefs if needed and starts counting from zero. */
export function startCountingResponses(): KernelResponseCounter {
  mountTracefs();
  // Off first: turning it on is what resets the counts, and it may have been left on.
  writeFileSync(ENABLED, "0");
  try {
    writeFileSync(FILTER, RESPONSE_FUNCTION);
  } catch (err) {
    throw new Error(`cannot trace ${RESPONSE_FUNCTION} (writing ${FILTER}: ${(err as Error).message}): ` +
      "it must be in available_filter_functions (CONFIG_IOMMU_IOPF, CONFIG_DYNAMIC_FTRACE)");
  }
  writeFileSync(ENABLED, "1");
  let running = true;
  return {
    count() {
      if (!running) throw new Error("KernelResponseCounter.count() after stop()");
      return readdirSync(STATS).filter((f) => /^function\d+$/.test(f)).reduce((sum, f) => sum + hitsIn(join(STATS, f)), 0);
    },
    stop() {
      running = false;
      writeFileSync(ENABLED, "0");
      // Opened with O_TRUNC: an empty filter, every function traceable again.
      writeFileSync(FILTER, "");
    },
  };
}
