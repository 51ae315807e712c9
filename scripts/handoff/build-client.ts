// The reference handoff client (iopf-handoff.c beside this file), compiled as
// the project compiles its C: gcc, cached under ~/.cache/iopf-relay/bin by a
// hash of the source. It links only against glibc, which the test guest has
// (scripts/vm/initramfs.ts copies node's shared libraries), so the same
// binary runs on the host and in the VM.
import { join } from "node:path";
import { compileC } from "../../src/fault/emulator/compile-c.js";
import { projectRoot } from "../vm/paths.js";

export const handoffClientSource = join(projectRoot, "scripts", "handoff", "iopf-handoff.c");

/** The path of the compiled client (compiling it on first use). */
export function buildHandoffClient(): Promise<string> {
  return compileC(handoffClientSource);
}
