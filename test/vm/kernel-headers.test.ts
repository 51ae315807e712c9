// src/kernel/uapi-structs.ts against the Linux 6.12 headers: a C program
// generated from the TypeScript tables prints sizeof/offsetof of every struct
// and field, each field's width, the ioctl numbers and the constants, as the
// compiler sees them; every one must equal the table's value.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { vmTest } from "../../scripts/vm/vm-test.js";
import { kernelHeaderPaths } from "../../scripts/vm/kernel.js";
import { allStructs, constants, ioctls } from "../../src/kernel/uapi-structs.js";

const run = promisify(execFile);

/** What the TypeScript tables say, keyed as the C program prints it. */
function expected(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const def of allStructs) {
    out[`sizeof(struct ${def.c})`] = def.size;
    for (const f of Object.values(def.fields)) {
      out[`offsetof(struct ${def.c}, ${f.c})`] = f.offset;
      out[`sizeof(((struct ${def.c} *)0)->${f.c})`] = f.type === "u64" ? 8 : 4;
    }
  }
  for (const [name, value] of [...Object.entries(ioctls), ...Object.entries(constants)]) out[name] = value;
  return out;
}

function program(keys: string[], testHeader: string): string {
  return [
    "#include <stdio.h>",
    "#include <stddef.h>",
    "#include <linux/iommufd.h>",
    `#include "${testHeader}"`,
    "int main(void) {",
    ...keys.map((k) => `  printf("%s\\t%llu\\n", ${JSON.stringify(k)}, (unsigned long long)(${k}));`),
    "  return 0;",
    "}",
  ].join("\n");
}

vmTest("every uAPI struct, field, ioctl number and constant matches the 6.12 headers", async (t) => {
  const { uapiIncludeDirs, iommufdTestHeader } = await kernelHeaderPaths();
  const want = expected();
  const dir = mkdtempSync(join(tmpdir(), "iopf-uapi-"));
  try {
    const src = join(dir, "uapi.c");
    writeFileSync(src, program(Object.keys(want), iommufdTestHeader));
    await run("gcc", ["-Wall", "-Werror", ...uapiIncludeDirs.map((d) => `-I${d}`), "-o", join(dir, "uapi"), src]);
    const { stdout } = await run(join(dir, "uapi"));
    const got = Object.fromEntries(stdout.trim().split("\n").map((l) => {
      const [k, v] = l.split("\t");
      return [k!, Number(v)];
    }));
    t.deepEqual(got, want);
    t.log(`${Object.keys(want).length} values checked against ${iommufdTestHeader} and ${uapiIncludeDirs.join(", ")}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
