// Where the project lives, found from this module's own location so the VM
// layer works both from build/scripts/vm (compiled) and from any cwd.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findProjectRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "iopf-relay") {
      return dir;
    }
    if (dirname(dir) === dir) {
      throw new Error(`no package.json named "iopf-relay" above ${start}; the VM scripts must run from inside the project`);
    }
  }
}

export const projectRoot = findProjectRoot(dirname(fileURLToPath(import.meta.url)));

/** Source files of the VM layer that are read at run time (not compiled). */
export const vmSourceDir = join(projectRoot, "scripts", "vm");
