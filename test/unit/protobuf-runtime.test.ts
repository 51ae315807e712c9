import test from "ava";
import { iopf } from "../../src/gen/guest_link.js";

const v1 = iopf.link.v1;

test("64-bit fields decode as numbers, exact for page-aligned addresses", (t) => {
  const address = 2 ** 64 - 4096;
  const bytes = v1.Page.encode({ address, perm: 3 }).finish();
  const page = v1.Page.decode(bytes);
  t.is(typeof page.address, "number");
  t.is(page.address, address);
  t.is(page.perm, 3);
});
