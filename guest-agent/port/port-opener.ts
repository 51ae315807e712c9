// Where the agent's guest link goes: the virtio-serial port found by name,
// a device path given outright, or a socket address (tests, containers).
// open() resolves null while the port does not exist, so the caller waits
// and retries; it throws when the port exists and cannot be opened.
import type { ByteStream } from "../../src/link/transport/byte-stream.js";
import { connect } from "../../src/link/transport/connect.js";
import { PortConfig } from "../config.js";
import { findPortByName } from "./sysfs-ports.js";

export type OpenDevice = (path: string) => Promise<ByteStream>;

export interface PortOpener {
  /** What is being opened, for logs. */
  readonly what: string;
  open(): Promise<ByteStream | null>;
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code ?? ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ECONNREFUSED";
}

export function portOpener(port: PortConfig, openDevice: OpenDevice): PortOpener {
  if (port.connect !== null) {
    const address = port.connect;
    return {
      what: address,
      // A relay not (yet) listening is "not there yet", like a missing port.
      open: () => connect(address).catch((err: unknown) => (isMissing(err) ? null : Promise.reject(err))),
    };
  }
  if (port.path !== null) {
    const path = port.path;
    return { what: path, open: () => openDevice(path).catch((err: unknown) => (isMissing(err) ? null : Promise.reject(err))) };
  }
  return {
    what: `the virtio-serial port named ${port.name} under ${port.sysfsRoot}/class/virtio-ports`,
    open: async () => {
      const found = await findPortByName(port.sysfsRoot, port.devRoot, port.name);
      if (!found) return null;
      return openDevice(found.device).catch((err: unknown) => (isMissing(err) ? null : Promise.reject(err)));
    },
  };
}
