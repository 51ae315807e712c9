// Finds a virtio-serial port by name the way udev would, without udev: each
// port is a directory <sysfs>/class/virtio-ports/vportNpM whose `name` file
// holds the name QEMU gave it (virtserialport,name=...), and the kernel's
// devtmpfs creates the device as /dev/vportNpM.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

export interface FoundPort {
  device: string;
  /** The sysfs directory, for logs. */
  sysfs: string;
}

/** The port named `name`, or null when no such port exists (yet). */
export async function findPortByName(sysfsRoot: string, devRoot: string, name: string): Promise<FoundPort | null> {
  const dir = join(sysfsRoot, "class", "virtio-ports");
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    // No virtio-serial device (or its driver not loaded yet): the same as "not there yet".
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  for (const entry of entries.sort()) {
    let portName: string;
    try {
      portName = (await readFile(join(dir, entry, "name"), "utf8")).trim();
    } catch {
      // A port being hot-unplugged, or one QEMU gave no name: not ours.
      continue;
    }
    if (portName === name) return { device: join(devRoot, entry), sysfs: join(dir, entry) };
  }
  return null;
}
