// Guest side (VM-A): what the kernel itself says about the relay's answers.
// It accepts one answer per cookie, so writing an answer again for a cookie
// tells whether it is still waiting (the write is taken) or was answered
// (EINVAL). Destructive: only after the relay has stopped.
import { EINVAL, errnoName } from "../../../src/kernel/errno.js";
import * as libc from "../../../src/kernel/libc.js";

/** iommu_hwpt_page_response: u32 cookie, u32 code. */
const RESPONSE_SIZE = 8;
/** iommu_hwpt_pgfault: 40 bytes, the cookie at offset 36. */
const RECORD_SIZE = 40;
const COOKIE_OFFSET = 36;

/** For each cookie, what the kernel said to one more INVALID answer: "EINVAL" (already answered) or "taken" (it was waiting). */
export function answerAgain(faultFd: number, cookies: number[]): string[] {
  return cookies.map((cookie) => {
    const buf = Buffer.alloc(RESPONSE_SIZE);
    buf.writeUInt32LE(cookie, 0);
    buf.writeUInt32LE(1, 4);
    const r = libc.write(faultFd, buf, RESPONSE_SIZE);
    return r === -EINVAL ? "EINVAL" : r === RESPONSE_SIZE ? "taken" : r < 0 ? errnoName(-r) : `wrote ${r} bytes`;
  });
}

/** Reads one fault record from the fault fd itself (nothing else may be reading it); its cookie, or null when none waits. */
export function readOneCookie(faultFd: number): number | null {
  const buf = Buffer.alloc(RECORD_SIZE);
  const n = libc.read(faultFd, buf, RECORD_SIZE);
  if (n < 0) throw new Error(`reading the fault fd ${faultFd}: ${errnoName(-n)}, expected a 40-byte record or 0`);
  return n === RECORD_SIZE ? buf.readUInt32LE(COOKIE_OFFSET) : null;
}
