import test from "ava";
import { connectTcp, TcpListener } from "../../src/link/transport/tcp.js";
import { listen } from "../../src/link/transport/connect.js";
import {
  checkSequentialClients,
  type Pair,
  registerStreamChecks,
  withListenerPair,
} from "./transport-conformance.js";

function withPair(run: (pair: Pair) => Promise<void>): Promise<void> {
  return withListenerPair(() => TcpListener.listen("127.0.0.1", 0), (l) => connectTcp("127.0.0.1", l.address.port), run);
}

registerStreamChecks(test, withPair);

test("a listener serves several clients in turn", async (t) => {
  const listener = await TcpListener.listen("127.0.0.1", 0);
  await checkSequentialClients(t, listener, () => connectTcp("127.0.0.1", listener.address.port));
  await listener.close();
});

test("a non-loopback listen is refused unless allowRemote is set", async (t) => {
  const err = await t.throwsAsync(listen("tcp:0.0.0.0:0"));
  t.regex(err?.message ?? "", /0\.0\.0\.0.*not a loopback address.*allowRemote/s);
  await t.throwsAsync(listen("tcp:[::]:0"), { message: /not a loopback/ });
  const open = await listen("tcp:0.0.0.0:0", { allowRemote: true });
  await open.close();
  t.pass();
});

test("connecting where nobody listens names the address", async (t) => {
  const listener = await TcpListener.listen("127.0.0.1", 0);
  const port = listener.address.port;
  await listener.close();
  await t.throwsAsync(connectTcp("127.0.0.1", port), { message: new RegExp(`tcp:127\\.0\\.0\\.1:${port}: cannot connect.*ECONNREFUSED`) });
});
