import test from "ava";
import { connectTcp, TcpListener } from "../../src/link/transport/tcp.js";
import { listen } from "../../src/link/transport/connect.js";
import { checkBothWays, checkBulk, checkDestroy, checkEnd, checkSequentialClients, nextConnection, type Pair } from "./transport-conformance.js";

async function withPair(run: (pair: Pair) => Promise<void>): Promise<void> {
  const listener = await TcpListener.listen("127.0.0.1", 0);
  try {
    const accepted = nextConnection(listener);
    const client = await connectTcp("127.0.0.1", listener.address.port);
    const server = await accepted;
    try {
      await run({ client, server });
    } finally {
      client.destroy();
      server.destroy();
    }
  } finally {
    await listener.close();
  }
}

test("bytes arrive intact and in order both ways", (t) => withPair((pair) => checkBothWays(t, pair)));
test("multi-megabyte transfer with backpressure, client to server", (t) => withPair(({ client, server }) => checkBulk(t, client, server)));
test("multi-megabyte transfer with backpressure, server to client", (t) => withPair(({ client, server }) => checkBulk(t, server, client)));
test("end() closes both sides once", (t) => withPair((pair) => checkEnd(t, pair)));
test("destroy(err) closes once with the error", (t) => withPair((pair) => checkDestroy(t, pair)));

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
