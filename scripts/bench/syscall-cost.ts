// What one system call costs through the relay's FFI (src/kernel/libc.ts, on
// ffi-rs) against the same call made by Node itself (fs.writeSync): a 40-byte
// write to /dev/null, so the kernel's part is the same and small.
import { closeSync, openSync, writeSync } from "node:fs";
import * as libc from "../../src/kernel/libc.js";

export interface SyscallCost {
  calls: number;
  ffiUs: number;
  nodeUs: number;
}

function perCall(calls: number, body: () => void): number {
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) body();
  return ((performance.now() - t0) * 1000) / calls;
}

export function measureSyscallCost(calls = 200_000): SyscallCost {
  const fd = openSync("/dev/null", "w");
  const buf = Buffer.alloc(40);
  try {
    // Warm both paths up first: the first calls pay for compilation and symbol lookup.
    perCall(1000, () => libc.write(fd, buf, 40));
    perCall(1000, () => writeSync(fd, buf, 0, 40));
    return { calls, ffiUs: perCall(calls, () => libc.write(fd, buf, 40)), nodeUs: perCall(calls, () => writeSync(fd, buf, 0, 40)) };
  } finally {
    closeSync(fd);
  }
}
