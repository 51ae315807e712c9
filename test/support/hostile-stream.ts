// A transport that writes slowly: it takes every chunk, but hands it to the
// real stream a few bytes per timer tick and returns false from write()
// while anything is waiting, emitting "drain" once it has caught up. This is
// what short writes and EAGAIN look like from above a ByteStream.
import { EventEmitter } from "node:events";
import type { ByteStream, ByteStreamEvents } from "../../src/link/transport/byte-stream.js";

export class SlowStream extends EventEmitter implements ByteStream {
  readonly description: string;
  private readonly queue: Buffer[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** Calls to write() that returned false: how often the writer was told to wait. */
  refusals = 0;

  constructor(private readonly inner: ByteStream, private readonly bytesPerTick = 7) {
    super();
    this.description = `slow(${inner.description})`;
    inner.on("data", (chunk) => this.emit("data", chunk));
    inner.on("hangup", () => this.emit("hangup"));
    inner.on("close", (err) => {
      if (this.timer) clearInterval(this.timer);
      this.emit("close", err);
    });
  }

  override on<E extends keyof ByteStreamEvents>(event: E, listener: ByteStreamEvents[E]): this {
    return super.on(event, listener);
  }

  override off<E extends keyof ByteStreamEvents>(event: E, listener: ByteStreamEvents[E]): this {
    return super.off(event, listener);
  }

  write(chunk: Uint8Array): boolean {
    this.queue.push(Buffer.from(chunk));
    this.timer ??= setInterval(() => this.trickle(), 1);
    this.refusals++;
    return false;
  }

  end(): void {
    this.inner.end();
  }

  destroy(err?: Error): void {
    this.inner.destroy(err);
  }

  private trickle(): void {
    let budget = this.bytesPerTick * 64;
    while (budget > 0 && this.queue.length > 0) {
      const head = this.queue[0]!;
      const n = Math.min(budget, head.length, this.bytesPerTick);
      this.inner.write(head.subarray(0, n));
      budget -= n;
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
    }
    if (this.queue.length === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
      this.emit("drain");
    }
  }
}
