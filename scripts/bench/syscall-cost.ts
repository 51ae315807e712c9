// What one system call costs through ffi-rs (the binding src/kernel/libc.ts
// keeps for poll, ioctl and eventfd, and used for read and write before they
// moved to Node's fs) against the same call made by Node itself
// (fs.writeSync): a 40-byte write to /dev/null, so the kernel's part is the
// same and small.
import { closeSync, openSync, writeSync } from "node:fs";
import { DataType, load, open as ffiOpen } from "ffi-rs";

export interface SyscallCost {
  calls: number;
  ffiUs: number;
  nodeUs: number;
}

const LIB = "iopf-bench-libc";

function perCall(calls: number, body: () => void): number {
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) body();
  return ((performance.now() - t0) * 1000) / calls;
}

export function measureSyscallCost(calls = 200_000): SyscallCost {
  ffiOpen({ library: LIB, path: "libc.so.6" });
  const fd = openSync("/dev/null", "w");
  const buf = Buffer.alloc(40);
  // The call libc.ts makes for its data-path calls: errno captured, the Buffer handed over as memory.
  const ffiWrite = (): unknown => load({ library: LIB, funcName: "write", retType: DataType.I64, paramsType: [DataType.I32, DataType.U8Array, DataType.U64], paramsValue: [fd, buf, 40], errno: true });
  try {
    // Warm both paths up first: the first calls pay for compilation and symbol lookup.
    perCall(1000, ffiWrite);
    perCall(1000, () => writeSync(fd, buf, 0, 40));
    return { calls, ffiUs: perCall(calls, ffiWrite), nodeUs: perCall(calls, () => writeSync(fd, buf, 0, 40)) };
  } finally {
    closeSync(fd);
  }
}
