// Where the project lives, found from this module's own location so the VM
// layer works both from build/scripts/vm (compiled) and from any cwd.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The checkout above start: its package.json names iopf-relay and its
 * tsconfig.json sits beside it. tsc copies package.json into build/ (the
 * agent imports its version from it), so the name alone would stop there.
 */
export function findProjectRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && existsSync(join(dir, "tsconfig.json")) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "iopf-relay") {
      return dir;
    }
    if (dirname(dir) === dir) {
      throw new Error(`no package.json named "iopf-relay" with a tsconfig.json beside it above ${start}; the VM scripts must run from inside the project's checkout`);
    }
  }
}

export const projectRoot = findProjectRoot(dirname(fileURLToPath(import.meta.url)));

/** Source files of the VM layer that are read at run time (not compiled). */
export const vmSourceDir = join(projectRoot, "scripts", "vm");
