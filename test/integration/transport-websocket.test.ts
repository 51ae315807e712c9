import test from "ava";
import { WebSocket, WebSocketServer } from "ws";
import { connectWebSocket, WebSocketListener, WS_MAX_PAYLOAD } from "../../src/link/transport/websocket.js";
import { listen } from "../../src/link/transport/connect.js";
import {
  checkSequentialClients,
  Collector,
  nextConnection,
  pattern,
  watchClose,
  type Pair,
  registerStreamChecks,
  withListenerPair,
} from "./transport-conformance.js";

const urlOf = (l: WebSocketListener) => `ws://127.0.0.1:${l.address.port}${l.address.path}`;

function withPair(run: (pair: Pair) => Promise<void>): Promise<void> {
  return withListenerPair(() => WebSocketListener.listen("127.0.0.1", 0, "/link"), (l) => connectWebSocket(urlOf(l)), run);
}

registerStreamChecks(test, withPair);

test("a listener serves several clients in turn", async (t) => {
  const listener = await WebSocketListener.listen("127.0.0.1", 0, "/link");
  await checkSequentialClients(t, listener, () => connectWebSocket(urlOf(listener)));
  await listener.close();
});

test("a write larger than maxPayload is cut into messages the peer accepts", (t) =>
  withPair(async ({ client, server }) => {
    const received = new Collector(server);
    const data = pattern(WS_MAX_PAYLOAD * 2 + 5, 7);
    client.write(data);
    t.true((await received.until(data.length)).equals(data));
  }));

test("a text message from the client closes the server's stream with an error", async (t) => {
  const listener = await WebSocketListener.listen("127.0.0.1", 0, "/link");
  const accepted = nextConnection(listener);
  const raw = new WebSocket(urlOf(listener));
  await new Promise((resolve) => raw.once("open", resolve));
  const server = await accepted;
  const closed = watchClose(server);
  const peerClosed = new Promise<number>((resolve) => raw.once("close", resolve));
  raw.send("hello", { binary: false });
  const err = await closed.closed;
  t.regex(err?.message ?? "", /received a text message; the guest link carries its bytes in binary messages only/);
  t.is(await peerClosed, 1003, "the peer is told why");
  await listener.close();
});

test("a text message from the server closes the client's stream with an error", async (t) => {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((resolve) => wss.once("listening", resolve));
  wss.on("connection", (ws) => ws.send("not bytes"));
  const port = (wss.address() as { port: number }).port;
  const client = await connectWebSocket(`ws://127.0.0.1:${port}/`);
  const err = await watchClose(client).closed;
  t.regex(err?.message ?? "", /text message/);
  await new Promise((resolve) => wss.close(resolve));
});

test("a message over maxPayload closes the stream with an error", async (t) => {
  const listener = await WebSocketListener.listen("127.0.0.1", 0, "/link");
  const accepted = nextConnection(listener);
  const raw = new WebSocket(urlOf(listener));
  await new Promise((resolve) => raw.once("open", resolve));
  const closed = watchClose(await accepted).closed;
  raw.send(Buffer.alloc(WS_MAX_PAYLOAD + 1));
  t.regex((await closed)?.message ?? "", /Max payload size exceeded/);
  raw.terminate();
  await listener.close();
});

test("a non-loopback listen is refused unless allowRemote is set", async (t) => {
  await t.throwsAsync(listen("ws://0.0.0.0:0/link"), { message: /ws: refusing to listen on 0\.0\.0\.0.*allowRemote/s });
});

test("another path is refused at the upgrade", async (t) => {
  const listener = await WebSocketListener.listen("127.0.0.1", 0, "/link");
  await t.throwsAsync(connectWebSocket(`ws://127.0.0.1:${listener.address.port}/other`), { message: /cannot connect.*400/ });
  await listener.close();
});
