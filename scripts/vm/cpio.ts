// A writer for the "newc" cpio format the kernel unpacks as an initramfs
// (Documentation/driver-api/early-userspace/buffer-format.rst). Written here
// rather than with cpio(1) so no staging tree is copied, and every entry is
// root-owned with mtime 0, which makes the archive a pure function of its inputs.
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { dirname } from "node:path/posix";

export type CpioEntry =
  | { kind: "dir"; path: string; mode?: number }
  | { kind: "file"; path: string; mode?: number; data: Buffer }
  | { kind: "symlink"; path: string; target: string }
  | { kind: "chardev"; path: string; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}

function header(ino: number, mode: number, nlink: number, size: number, name: string, rdev = [0, 0]): Buffer {
  const fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev[0]!, rdev[1]!, Buffer.byteLength(name) + 1, 0];
  const text = "070701" + fields.map((f) => f.toString(16).padStart(8, "0")).join("") + name + "\0";
  return Buffer.concat([Buffer.from(text, "latin1"), pad4(110 + Buffer.byteLength(name) + 1)]);
}

/**
 * Writes entries (paths relative to the archive root, no leading "/") to
 * outFile, adding any parent directory not listed, because the kernel creates
 * nothing implicitly while unpacking.
 */
export function writeCpio(outFile: string, entries: CpioEntry[]): void {
  const fd = openSync(outFile, "w");
  try {
    const seen = new Set<string>();
    let ino = 1;
    const emit = (mode: number, nlink: number, name: string, data: Buffer, rdev?: number[]) => {
      writeSync(fd, header(ino++, mode, nlink, data.length, name, rdev));
      writeSync(fd, data);
      writeSync(fd, pad4(data.length));
    };
    const ensureDir = (path: string, mode = 0o755) => {
      if (path === "." || seen.has(path)) return;
      ensureDir(dirname(path));
      seen.add(path);
      emit(S_IFDIR | mode, 2, path, Buffer.alloc(0));
    };
    for (const e of entries) {
      if (e.path.startsWith("/")) throw new Error(`cpio entry "${e.path}": expected a path relative to the archive root`);
      if (e.kind === "dir") {
        ensureDir(e.path, e.mode);
        continue;
      }
      if (seen.has(e.path)) throw new Error(`cpio entry "${e.path}" listed twice; each path must appear once`);
      ensureDir(dirname(e.path));
      seen.add(e.path);
      if (e.kind === "file") emit(S_IFREG | (e.mode ?? 0o644), 1, e.path, e.data);
      else if (e.kind === "symlink") emit(S_IFLNK | 0o777, 1, e.path, Buffer.from(e.target));
      else emit(S_IFCHR | e.mode, 1, e.path, Buffer.alloc(0), [e.major, e.minor]);
    }
    emit(0, 1, "TRAILER!!!", Buffer.alloc(0));
  } finally {
    closeSync(fd);
  }
}

/** A file entry whose bytes are read from the host now, keeping its permission bits. */
export function hostFile(path: string, hostPath: string, mode: number): CpioEntry {
  return { kind: "file", path, mode, data: readFileSync(hostPath) };
}
