// compileC: concurrent calls for one source in one process share a compile
// (they raced on one temporary file, and a rename failed with ENOENT).
import test from "ava";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileC } from "../../src/fault/emulator/compile-c.js";

test("two concurrent compiles of a source not yet cached give the same working binary", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "iopf-compile-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const source = join(dir, "hello.c");
  // A text of its own: never in the cache, so both calls must compile.
  writeFileSync(source, `/* ${randomBytes(8).toString("hex")} */\n#include <stdio.h>\nint main(void) { puts("built"); return 0; }\n`);
  const [a, b] = await Promise.all([compileC(source), compileC(source)]);
  t.is(a, b);
  t.is(execFileSync(a, { encoding: "utf8" }), "built\n");
  rmSync(a);
});
