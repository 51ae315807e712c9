// The typed event plumbing every transport's ByteStream shares, and the one
// rule they all need: "close" is emitted exactly once, whatever mix of end(),
// destroy(), peer close and errors led to it.
import { EventEmitter } from "node:events";
import type { ByteStreamEvents } from "./byte-stream.js";

export abstract class StreamEvents {
  // A private emitter rather than inheritance: ByteStream has no "error"
  // event (failures arrive as close(err)), so EventEmitter's throw on an
  // unhandled "error" must never be reachable through this class.
  private readonly emitter = new EventEmitter();
  private closeEmitted = false;

  on<E extends keyof ByteStreamEvents>(event: E, listener: ByteStreamEvents[E]): this {
    this.emitter.on(event, listener);
    return this;
  }

  off<E extends keyof ByteStreamEvents>(event: E, listener: ByteStreamEvents[E]): this {
    this.emitter.off(event, listener);
    return this;
  }

  /** True once "close" has been emitted. */
  protected get closed(): boolean {
    return this.closeEmitted;
  }

  protected emit<E extends Exclude<keyof ByteStreamEvents, "close">>(
    event: E,
    ...args: Parameters<ByteStreamEvents[E]>
  ): void {
    if (!this.closeEmitted) this.emitter.emit(event, ...args);
  }

  /** Emits "close" the first time only; later calls are ignored. */
  protected emitClose(err?: Error): void {
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    if (err) this.emitter.emit("close", err);
    else this.emitter.emit("close");
  }
}
