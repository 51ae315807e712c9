// What every transport test checks, written once: bytes arrive intact and in
// order both ways, a large transfer respects backpressure, close is emitted
// once, and a listener serves clients one after another.
import type { ExecutionContext } from "ava";
import type { ByteStream, StreamListener } from "../../src/link/transport/byte-stream.js";

/** Deterministic bytes, different per seed, so misordering shows. */
export function pattern(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 16;
  }
  return out;
}

/**
 * Gathers a stream's bytes, keeping the chunks themselves: they belong to
 * the listener, so a stream that reused one would show here as corruption.
 */
export class Collector {
  private chunks: Buffer[] = [];
  private size = 0;
  private waiters: Array<() => void> = [];

  constructor(stream: ByteStream) {
    stream.on("data", (chunk) => {
      this.chunks.push(chunk);
      this.size += chunk.length;
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  get length(): number {
    return this.size;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }

  /** Resolves with everything received once at least n bytes have come. */
  async until(n: number, timeoutMs = 20_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.size < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${n} bytes, got ${this.size} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.bytes();
  }
}

/** Writes data in chunks, waiting for "drain" whenever write() says false. */
export async function writeAll(stream: ByteStream, data: Buffer, chunkSize = 64 * 1024): Promise<{ refusals: number }> {
  let refusals = 0;
  for (let at = 0; at < data.length; at += chunkSize) {
    if (!stream.write(data.subarray(at, at + chunkSize))) {
      refusals++;
      await new Promise<void>((resolve) => {
        const onDrain = () => {
          stream.off("drain", onDrain);
          resolve();
        };
        stream.on("drain", onDrain);
      });
    }
  }
  return { refusals };
}

/** Counts "close" events; closed resolves with the first one's error. */
export function watchClose(stream: ByteStream): { count: () => number; closed: Promise<Error | undefined> } {
  let count = 0;
  const closed = new Promise<Error | undefined>((resolve) => {
    stream.on("close", (err) => {
      count++;
      resolve(err);
    });
  });
  return { count: () => count, closed };
}

export function nextConnection(listener: StreamListener): Promise<ByteStream> {
  return new Promise((resolve) => {
    const onConnection = (stream: ByteStream) => resolve(stream);
    listener.on("connection", onConnection);
  });
}

/** Lets pending events (a second "close", late data) show up before asserting. */
export function settle(ms = 50): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface Pair {
  client: ByteStream;
  server: ByteStream;
}

/** Small writes both ways, interleaved, arrive whole and in order. */
export async function checkBothWays(t: ExecutionContext, { client, server }: Pair): Promise<void> {
  const atServer = new Collector(server);
  const atClient = new Collector(client);
  const up = pattern(10_000, 2);
  const down = pattern(7_000, 3);
  for (let at = 0; at < up.length; at += 1000) {
    client.write(up.subarray(at, at + 1000));
    server.write(down.subarray(at, at + 1000));
  }
  t.true((await atServer.until(up.length)).equals(up), "client to server");
  t.true((await atClient.until(down.length)).equals(down), "server to client");
}

/** Several MiB one way: write() must say false at least once, and every byte must arrive. */
export async function checkBulk(t: ExecutionContext, from: ByteStream, to: ByteStream, size = 8 * 1024 * 1024): Promise<void> {
  const received = new Collector(to);
  const data = pattern(size, 4);
  const started = performance.now();
  const { refusals } = await writeAll(from, data);
  const got = await received.until(size, 40_000);
  const ms = performance.now() - started;
  t.true(refusals > 0, "write() returned false at least once");
  t.is(got.length, size);
  t.true(got.equals(data), "bytes intact and in order");
  t.log(`${from.description}: ${(size / 1048576).toFixed(0)} MiB in ${ms.toFixed(0)} ms, ${refusals} waits for drain`);
}

/** end() on one side: each side emits close exactly once, without an error. */
export async function checkEnd(t: ExecutionContext, { client, server }: Pair): Promise<void> {
  const c = watchClose(client);
  const s = watchClose(server);
  client.end();
  t.is(await c.closed, undefined);
  t.is(await s.closed, undefined);
  client.end();
  client.destroy();
  await settle();
  t.is(c.count(), 1);
  t.is(s.count(), 1);
}

/** destroy(err): close once with that error here, close once over there. */
export async function checkDestroy(t: ExecutionContext, { client, server }: Pair): Promise<void> {
  const c = watchClose(client);
  const s = watchClose(server);
  const cause = new Error("test destroys the stream");
  client.destroy(cause);
  t.is(await c.closed, cause);
  await s.closed;
  client.destroy();
  await settle();
  t.is(c.count(), 1);
  t.is(s.count(), 1);
}

/** One listener, clients one after another, each with its own bytes. */
export async function checkSequentialClients(
  t: ExecutionContext,
  listener: StreamListener,
  connect: () => Promise<ByteStream>,
  clients = 3,
): Promise<void> {
  for (let i = 0; i < clients; i++) {
    const accepted = nextConnection(listener);
    const client = await connect();
    const server = await accepted;
    const atServer = new Collector(server);
    const greeting = pattern(1000 + i, 10 + i);
    client.write(greeting);
    t.true((await atServer.until(greeting.length)).equals(greeting), `client ${i}`);
    const closed = watchClose(server).closed;
    client.end();
    t.is(await closed, undefined);
  }
}

/** Runs `run` on a connected client/server pair from a fresh listener, then closes all three. */
export async function withListenerPair<L extends StreamListener>(
  listen: () => Promise<L>,
  connect: (listener: L) => Promise<ByteStream>,
  run: (pair: Pair) => Promise<void>,
): Promise<void> {
  const listener = await listen();
  try {
    const accepted = nextConnection(listener);
    const client = await connect(listener);
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

/** Registers the checks every connected transport passes, on pairs from withPair. */
export function registerStreamChecks(test: (title: string, impl: (t: ExecutionContext) => Promise<void>) => void, withPair: (run: (pair: Pair) => Promise<void>) => Promise<void>): void {
  test("bytes arrive intact and in order both ways", (t) => withPair((pair) => checkBothWays(t, pair)));
  test("multi-megabyte transfer with backpressure, client to server", (t) => withPair(({ client, server }) => checkBulk(t, client, server)));
  test("multi-megabyte transfer with backpressure, server to client", (t) => withPair(({ client, server }) => checkBulk(t, server, client)));
  test("end() closes both sides once", (t) => withPair((pair) => checkEnd(t, pair)));
  test("destroy(err) closes once with the error", (t) => withPair((pair) => checkDestroy(t, pair)));
}
