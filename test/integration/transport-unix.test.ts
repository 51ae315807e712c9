import test from "ava";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectUnix, UnixListener } from "../../src/link/transport/unix.js";
import {
  checkSequentialClients,
  nextConnection,
  type Pair,
  registerStreamChecks,
  withListenerPair,
} from "./transport-conformance.js";

const dirs: string[] = [];
const socketPath = () => {
  const dir = mkdtempSync(join(tmpdir(), "iopf-unix-"));
  dirs.push(dir);
  return join(dir, "link.sock");
};
test.after.always(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function withPair(run: (pair: Pair) => Promise<void>): Promise<void> {
  return withListenerPair(() => UnixListener.listen(socketPath()), (l) => connectUnix(l.path), run);
}

registerStreamChecks(test, withPair);

test("a listener serves several clients in turn", async (t) => {
  const listener = await UnixListener.listen(socketPath());
  await checkSequentialClients(t, listener, () => connectUnix(listener.path));
  await listener.close();
});

test("the socket file is 0600 and removed on close", async (t) => {
  const path = socketPath();
  const listener = await UnixListener.listen(path);
  const st = statSync(path);
  t.true(st.isSocket());
  t.is(st.mode & 0o777, 0o600);
  await listener.close();
  t.false(existsSync(path));
});

test("a stale socket file (nobody listening) is replaced", async (t) => {
  const path = socketPath();
  // A socket bound and never listened on, its owner gone: what a crashed relay leaves.
  execFileSync("python3", ["-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path]);
  t.true(statSync(path).isSocket());
  const listener = await UnixListener.listen(path);
  const accepted = nextConnection(listener);
  const client = await connectUnix(path);
  (await accepted).destroy();
  client.destroy();
  await listener.close();
  t.pass();
});

test("a live socket is not replaced", async (t) => {
  const path = socketPath();
  const first = await UnixListener.listen(path);
  await t.throwsAsync(UnixListener.listen(path), { message: /another process is listening on this socket/ });
  // The first listener still works.
  const accepted = nextConnection(first);
  const client = await connectUnix(path);
  (await accepted).destroy();
  client.destroy();
  await first.close();
});

test("a path that is not a socket is left alone", async (t) => {
  const path = socketPath();
  writeFileSync(path, "precious");
  await t.throwsAsync(UnixListener.listen(path), { message: /exists and is not a socket; refusing to replace it/ });
  t.true(statSync(path).isFile());
});

test("a path longer than sun_path is refused with its length", async (t) => {
  const path = join(tmpdir(), "x".repeat(120));
  await t.throwsAsync(UnixListener.listen(path), { message: /is 1\d\d bytes; a Unix socket path is limited to 107/ });
});
