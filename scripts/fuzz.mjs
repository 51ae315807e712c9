// The long fuzz run: the guest link's input-side properties (the same ones
// test/unit/fuzz-link.test.ts runs briefly in CI, from
// test/support/hostile-fuzz.ts), each for a time budget or a run count.
//   node scripts/fuzz.mjs [--seconds 60] [--runs N] [--only "name"] [--seed S]
// Builds first. A failure prints the property, seed and shrunk counterexample
// and exits 1: add the counterexample to test/unit/fuzz-regressions.test.ts.
import { execFileSync } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};
const seconds = Number(option("seconds", "60"));
const runs = option("runs", null);
const only = option("only", null);
const seed = option("seed", null);
if (!Number.isFinite(seconds) || seconds <= 0 || (runs !== null && !(Number(runs) > 0))) {
  console.error(`fuzz: expected --seconds N (> 0) and/or --runs N (> 0), got --seconds ${option("seconds", "")} --runs ${runs}; e.g. node scripts/fuzz.mjs --seconds 120`);
  process.exit(2);
}

execFileSync(process.execPath, [join(root, "scripts", "build.mjs")], { cwd: root, stdio: "inherit" });
const fc = (await import("fast-check")).default;
const { properties } = await import(pathToFileURL(join(root, "build", "test", "support", "hostile-fuzz.js")).href);
const names = Object.keys(properties).filter((n) => only === null || n === only);
if (names.length === 0) {
  console.error(`fuzz: no property named "${only}"; expected one of: ${Object.keys(properties).join(", ")}`);
  process.exit(2);
}

let failed = false;
let total = 0;
for (const name of names) {
  const started = Date.now();
  const details = fc.check(properties[name].property(), {
    numRuns: runs === null ? Number.MAX_SAFE_INTEGER : Number(runs),
    interruptAfterTimeLimit: seconds * 1000,
    markInterruptAsFailure: false,
    ...(seed !== null ? { seed: Number(seed) } : {}),
  });
  total += details.numRuns;
  const took = ((Date.now() - started) / 1000).toFixed(1);
  if (details.failed) {
    failed = true;
    console.log(`FAIL ${name}: after ${details.numRuns} runs (${took} s), seed ${details.seed}, path ${details.counterexamplePath}`);
    console.log(`  counterexample: ${fc.stringify(details.counterexample)}`);
    console.log(`  error: ${details.errorInstance?.message ?? details.error}`);
  } else {
    console.log(`ok   ${name}: ${details.numRuns} runs in ${took} s (seed ${details.seed})`);
  }
}
console.log(`fuzz: ${total} inputs tried, ${failed ? "failures above" : "no failure"}`);
process.exit(failed ? 1 : 0);
