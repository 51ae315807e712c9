// The test registrar for test/vm, decided once at module load: with the host
// prerequisites present (or installable: root with apt-get) VM tests run;
// otherwise they are skipped with the install command printed, except under
// CI (CI=true), where they fail.
import test, { type ExecutionContext } from "ava";
import { ensureKernel } from "./kernel.js";
import { ensureBaseInitramfs } from "./initramfs.js";
import { canInstallPrerequisites, ensureVmPrerequisites, vmPrerequisites } from "./prerequisites.js";

export type VmTestImpl = (t: ExecutionContext) => Promise<void> | void;
export interface VmTestOptions {
  /** Time the test itself may take once the kernel and image exist (default 10 minutes). */
  timeoutMs?: number;
}

// Installing packages and a cold kernel build (about 10 minutes on 2 cores)
// happen inside the first test, under this allowance, because ava's 60 s
// inactivity timeout cannot be extended while a test module is loading.
const PREPARE_TIMEOUT_MS = 30 * 60_000;
const DEFAULT_TEST_TIMEOUT_MS = 10 * 60_000;

const found = vmPrerequisites();
const inCi = process.env.CI === "true";
const usable = found.ok || canInstallPrerequisites();
const unmet = found.ok ? "" : `${found.reason}; install with: ${found.installCommand}`;
if (!usable) process.stderr.write(`VM tests ${inCi ? "FAIL (CI=true)" : "skipped"}: ${unmet}\n`);

function runnable(title: string, impl: VmTestImpl, opts: VmTestOptions = {}): void {
  // Serial: each VM is QEMU TCG with 2 vCPUs, so two at once on a 2-core host
  // halve the speed of both and stretch guest timing.
  test.serial(title, async (t) => {
    t.timeout(PREPARE_TIMEOUT_MS, "installing VM prerequisites and building the guest kernel and initramfs");
    const ready = await ensureVmPrerequisites();
    if (!ready.ok) {
      t.fail(`${ready.reason}; install with: ${ready.installCommand}`);
      return;
    }
    await ensureKernel();
    await ensureBaseInitramfs();
    t.timeout(opts.timeoutMs ?? DEFAULT_TEST_TIMEOUT_MS);
    await impl(t);
  });
}

function failing(title: string): void {
  test(title, (t) => {
    t.fail(unmet);
  });
}

function skipped(title: string): void {
  test.skip(title, () => {});
}

/** Registers a test that boots VMs; see the module comment for when it is skipped or failed. */
export const vmTest: (title: string, impl: VmTestImpl, opts?: VmTestOptions) => void =
  usable ? runnable : inCi ? failing : skipped;
