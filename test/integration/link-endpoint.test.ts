// The relay's connecting endpoint backs off from a peer that accepts and
// closes at once, instead of reconnecting in a tight loop.
import test from "ava";
import { createServer } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openLinkEndpoint } from "../../src/relay/link-endpoint.js";
import { createLogger } from "../../src/relay/log.js";

test("a peer that closes every connection at once sees backed-off reconnects", async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), "iopf-endpoint-")), "qemu.sock");
  let connects = 0;
  const server = createServer((s) => {
    connects++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(path, r));
  const endpoint = await openLinkEndpoint({ connect: `unix:${path}` }, () => undefined, createLogger("test", "json", "error", () => undefined));
  await new Promise((r) => setTimeout(r, 1600));
  await endpoint.close();
  server.close();
  // 100, 200, 400, 800 ms: at most 5 connects in 1.6 s (a reset backoff would give ~16).
  t.true(connects >= 2 && connects <= 5, `${connects} connects in 1.6 s`);
});
