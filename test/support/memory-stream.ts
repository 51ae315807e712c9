// An in-memory ByteStream pair for tests: what one side writes arrives at
// the other on a later turn of the event loop, as a copy. Tests can inject
// bytes, cut the pair, or hang one side up as a virtio-serial host would.
import { EventEmitter } from "node:events";
import type { ByteStream, ByteStreamEvents } from "../../src/link/transport/byte-stream.js";

export class MemoryStream extends EventEmitter implements ByteStream {
  peer: MemoryStream | null = null;
  closed = false;
  /** Every chunk delivered to this side, for tests that inspect the raw bytes. */
  readonly received: Buffer[] = [];
  /** When set, chunks are delivered in pieces of at most this many bytes. */
  splitAt = 0;

  constructor(readonly description: string) {
    super();
  }

  override on<E extends keyof ByteStreamEvents>(event: E, listener: ByteStreamEvents[E]): this {
    return super.on(event, listener);
  }

  override off<E extends keyof ByteStreamEvents>(event: E, listener: ByteStreamEvents[E]): this {
    return super.off(event, listener);
  }

  write(chunk: Uint8Array): boolean {
    if (this.closed) return false;
    const copy = Buffer.from(chunk);
    const peer = this.peer;
    setImmediate(() => peer?.deliver(copy));
    return true;
  }

  /** Bytes arriving at this side as if the peer had written them. */
  deliver(bytes: Buffer): void {
    if (this.closed) return;
    const step = this.splitAt > 0 ? this.splitAt : bytes.length;
    for (let i = 0; i < bytes.length; i += step) {
      const piece = Buffer.from(bytes.subarray(i, i + step));
      this.received.push(piece);
      this.emit("data", piece);
    }
  }

  end(): void {
    this.destroy();
  }

  destroy(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.emit("close", err);
    const peer = this.peer;
    setImmediate(() => peer?.destroy());
  }
}

export function memoryPair(): [MemoryStream, MemoryStream] {
  const a = new MemoryStream("memory:host");
  const b = new MemoryStream("memory:guest");
  a.peer = b;
  b.peer = a;
  return [a, b];
}

export function tick(ms = 0): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until cond() holds, checking every few ms; fails after timeoutMs. */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = "condition"): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await tick(2);
  }
}
