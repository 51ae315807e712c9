// The seqpacket server's connections as its user sees them
// (src/kernel/seqpacket-server.ts): an fd number it was given stays that
// connection's until it closed it or was told the peer did, so a close or a
// reply meant for a connection that is gone never reaches a newer one that
// got the same number, and each connection is reported closed once.
import test, { type ExecutionContext } from "ava";
import { closeSync, openSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SeqpacketServer, type ServerEvent } from "../../src/kernel/seqpacket-server.js";
import * as libc from "../../src/kernel/libc.js";
import { connectSeqpacket, receive, send } from "../../src/kernel/unix-rights.js";
import { tempDir } from "./control-harness.js";

interface Events {
  all: ServerEvent[];
  /** The first event (already seen or still to come) that `pred` accepts. */
  next<T extends ServerEvent>(pred: (ev: ServerEvent) => ev is T): Promise<T>;
}

async function listen(t: ExecutionContext): Promise<{ server: SeqpacketServer; path: string; events: Events }> {
  const path = join(tempDir(t, "iopf-seqpacket-"), "s.sock");
  const server = await SeqpacketServer.listen(path);
  t.teardown(() => server.close());
  const all: ServerEvent[] = [];
  const waiters: (() => void)[] = [];
  server.on("event", (ev: ServerEvent) => {
    all.push(ev);
    for (const w of waiters.splice(0)) w();
  });
  const next = <T extends ServerEvent>(pred: (ev: ServerEvent) => ev is T): Promise<T> => new Promise((resolve) => {
    const check = (): void => {
      const found = all.find(pred);
      if (found) resolve(found);
      else waiters.push(check);
    };
    check();
  });
  return { server, path, events: { all, next } };
}

type Of<K extends ServerEvent["type"]> = Extract<ServerEvent, { type: K }>;
const is = <K extends ServerEvent["type"]>(type: K, conn?: number) => (ev: ServerEvent): ev is Of<K> =>
  ev.type === type && (conn === undefined || (ev as { conn?: number }).conn === conn);

function connect(t: ExecutionContext, path: string): number {
  const fd = connectSeqpacket(path);
  t.teardown(() => void libc.close(fd));
  return fd;
}

/** How many of this process's fds name `file`. */
const opened = (file: string): number => readdirSync("/proc/self/fd").filter((fd) => {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`) === file;
  } catch {
    return false;
  }
}).length;

test("a connection the peer closed is reported once; closing it after changes nothing, and the next connection, whatever its number, is read and answered", async (t) => {
  const { server, path, events } = await listen(t);
  const a = connectSeqpacket(path);
  const first = (await events.next(is("connection"))).conn;
  libc.close(a);
  await events.next(is("closed", first));
  // The user had not yet seen the close when it decided to close the connection.
  server.closeConnection(first);
  const b = connect(t, path);
  const second = (await events.next((ev): ev is Of<"connection"> => ev.type === "connection" && events.all.indexOf(ev) > events.all.findIndex(is("closed", first)))).conn;
  t.is(send(b, Buffer.from("hello")), 5);
  const m = await events.next(is("message", second));
  t.is(Buffer.from(m.data).toString(), "hello");
  t.true(server.reply(second, Buffer.from("back")), "the second connection is open");
  t.is(receive(b, 16)?.data.toString(), "back");
  t.is(events.all.filter((ev) => ev.type === "closed").length, 1, `closed once: ${JSON.stringify(events.all.map((ev) => ev.type))}`);
});

test("what a connection sent before the server closed it is dropped, its fds closed; a reply to it is refused", async (t) => {
  const { server, path, events } = await listen(t);
  const file = join(tempDir(t, "iopf-seqpacket-file-"), "passed");
  writeFileSync(file, "");
  const passed = openSync(file, "r");
  t.teardown(() => closeSync(passed));
  const a = connect(t, path);
  const conn = (await events.next(is("connection"))).conn;
  // Sent, and closed by the server before it has seen the message.
  t.is(send(a, Buffer.from("late"), [passed]), 4);
  server.closeConnection(conn);
  t.false(server.reply(conn, Buffer.from("no")), "no reply to a closed connection");
  // Events come in order: once another connection's message is here, anything of the first was too.
  const b = connect(t, path);
  send(b, Buffer.from("after"));
  await events.next((ev): ev is Of<"message"> => ev.type === "message" && Buffer.from(ev.data).toString() === "after");
  t.deepEqual(events.all.filter((ev) => ev.type === "message").map((ev) => Buffer.from((ev as Of<"message">).data).toString()), ["after"]);
  t.is(opened(file), 1, "only the test's own fd of the file is open");
  t.false(events.all.some(is("closed", conn)), "a connection the server closed is not reported");
});
