// The guest link's input side under fast-check, with the properties of
// test/support/hostile-fuzz.ts at CI run counts (a few seconds each);
// `npm run fuzz` (scripts/fuzz.mjs) runs the same ones for longer.
import test from "ava";
import fc from "fast-check";
import { properties, PropertyName } from "../support/hostile-fuzz.js";

for (const name of Object.keys(properties) as PropertyName[]) {
  const { ciRuns, property } = properties[name];
  test(name, (t) => {
    fc.assert(property() as fc.IRawProperty<unknown>, { numRuns: ciRuns });
    t.pass();
  });
}
