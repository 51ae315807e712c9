// The request codes and error codes are declared once, in the .proto; the
// spec's tables must list exactly those, with the same numbers.
import test from "ava";
import { LinkErrorCode } from "../../src/link/link-error.js";
import { RequestCode } from "../../src/link/request-code.js";
import { numberedRows, protocolSection } from "../support/protocol-doc.js";

/** An enum's values by number, its zero ("unspecified", never on the wire as a code) left out. */
function declared(e: Record<string, string | number>): [number, string][] {
  const values: [number, string][] = [];
  for (const [name, v] of Object.entries(e)) if (typeof v === "number" && v !== 0) values.push([v, name]);
  return values;
}

test("the request codes of docs/protocol.md section 3 are the .proto's enum RequestCode, each below 0xFF", (t) => {
  const documented = numberedRows(protocolSection(3)).map(([code, name]) => [code, name]);
  t.deepEqual(documented, declared(RequestCode));
  for (const [code] of declared(RequestCode)) t.true(code < 0xff, `code ${code}: a frame's first byte must never be 0xFF, a marker's`);
});

test("the error codes of docs/protocol.md section 7 are the .proto's enum ErrorCode", (t) => {
  const documented = numberedRows(protocolSection(7)).map(([code, name]) => [code, name]);
  t.deepEqual(documented, declared(LinkErrorCode));
});
