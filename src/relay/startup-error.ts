// How a relay's start ends when the operator can fix what stopped it: the
// message is the whole line to print (what, why, what to do). The command's
// top level prints it once, without a stack, and exits 1; anything else that
// escapes is a bug and keeps its stack.
import { accessSync, constants } from "node:fs";

export class StartupError extends Error {
  override readonly name: string = "StartupError";
}

/** The iommufd character device (--iommufd opens it). */
export const IOMMU_DEVICE = "/dev/iommu";

/**
 * Before --iommufd opens the device: says in the operator's words why it
 * cannot, where open() would only give an errno.
 */
export function checkIommuDevice(path: string = IOMMU_DEVICE): void {
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new StartupError(`--iommufd: ${path} does not exist: this kernel has no iommufd (it needs CONFIG_IOMMUFD, and Linux 6.11 or later for fault queues); run the relay on such a host, or try it with --source emulator`);
    }
    if (code === "EACCES" || code === "EPERM") {
      throw new StartupError(`--iommufd: permission denied opening ${path}; run as root, or give the relay's user ${path} (a udev rule, or the unit's User= with the device's group)`);
    }
    throw new StartupError(`--iommufd: cannot open ${path}: ${(err as Error).message}`);
  }
}
