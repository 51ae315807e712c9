// The relay's connecting endpoint backs off from a peer that accepts and
// closes at once, instead of reconnecting in a tight loop.
import test from "ava";
import { createServer } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openLinkEndpoint } from "../../src/relay/link-endpoint.js";
import { createLogger } from "../../src/relay/log.js";
import { until } from "../support/memory-stream.js";

test("a peer that closes every connection at once sees backed-off reconnects", async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), "iopf-endpoint-")), "qemu.sock");
  const at: number[] = [];
  const server = createServer((s) => {
    at.push(performance.now());
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(path, r));
  const endpoint = await openLinkEndpoint({ connect: `unix:${path}` }, () => undefined, createLogger("test", "json", "error", () => undefined));
  await until(() => at.length >= 5, 10_000, "five connects");
  await endpoint.close();
  server.close();
  const gaps = at.slice(1).map((t0, i) => t0 - at[i]!);
  // Delays of 100, 200, 400, 800 ms, each with jitter down to half: the fourth gap is at least 400 ms.
  // A backoff reset on every close would keep every gap near 100 ms. (A slow machine only widens gaps.)
  t.true(gaps[3]! >= 400, `gaps between connects: ${gaps.map((g) => g.toFixed(0)).join(", ")} ms`);
});
