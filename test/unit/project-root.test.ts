// The VM layer, the handoff client's build and several tests find the
// checkout from their own compiled location: build/ holds tsc's copy of
// package.json (the agent imports its version from it), which must not be
// taken for the checkout.
import test from "ava";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findProjectRoot, projectRoot } from "../../scripts/vm/paths.js";

test("the project root is the checkout, not build/ with its copy of package.json", (t) => {
  t.true(existsSync(join(projectRoot, "scripts", "vm", "guest-kernel.config")), `${projectRoot} has no scripts/vm/guest-kernel.config: not the checkout`);
});

test("findProjectRoot passes over a package.json named iopf-relay with no tsconfig.json beside it", (t) => {
  const root = mkdtempSync(join(tmpdir(), "iopf-root-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const pkg = JSON.stringify({ name: "iopf-relay" });
  writeFileSync(join(root, "package.json"), pkg);
  writeFileSync(join(root, "tsconfig.json"), "{}");
  mkdirSync(join(root, "build", "scripts", "vm"), { recursive: true });
  writeFileSync(join(root, "build", "package.json"), pkg);
  t.is(findProjectRoot(join(root, "build", "scripts", "vm")), root);
});
