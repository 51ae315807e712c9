// Who can reach the link socket: the Unix listener creates it 0600 in the
// bind itself, whatever the process umask, and leaves the umask as it was.
// (The control socket does the same in src/relay/control/listen.ts; its
// tests live with the control server.)
import test from "ava";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UnixListener } from "../../src/link/transport/unix.js";

test("the link socket is 0600 even under umask 0, and the umask is restored", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "iopf-access-"));
  const previous = process.umask(0);
  try {
    const listener = await UnixListener.listen(join(dir, "link.sock"));
    t.is(process.umask(0), 0, "the listener restored the caller's umask");
    t.is(statSync(listener.path).mode & 0o777, 0o600);
    await listener.close();
  } finally {
    process.umask(previous);
    rmSync(dir, { recursive: true, force: true });
  }
});
