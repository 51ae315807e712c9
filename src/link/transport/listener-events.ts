// The event side of a StreamListener, shared by the Unix, TCP and WebSocket
// listeners. Each accepted connection is wrapped once, here, however many
// "connection" listeners there are.
import { EventEmitter } from "node:events";
import type { Server } from "node:net";
import type { ByteStream } from "./byte-stream.js";

export abstract class ListenerEvents {
  // An "error" nobody listens for throws, as with any Node emitter: a
  // listener that can fail after it started (EMFILE on accept) must be
  // watched by whoever owns it.
  private readonly emitter = new EventEmitter();

  on(event: "connection", listener: (stream: ByteStream) => void): this;
  on(event: "error", listener: (err: Error) => void): this;
  on(event: "connection" | "error", listener: (arg: ByteStream & Error) => void): this {
    this.emitter.on(event, listener);
    return this;
  }

  protected emitConnection(stream: ByteStream): void {
    this.emitter.emit("connection", stream);
  }

  protected emitError(err: Error): void {
    this.emitter.emit("error", err);
  }
}

/**
 * Closes a listening net.Server without waiting for the connections it
 * accepted (its own callback waits for all of them to end): server.close()
 * closes the listening fd at once (and libuv unlinks a Unix socket's file),
 * so one turn later the address is free.
 */
export function closeServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  server.close();
  return new Promise((resolve) => setImmediate(resolve));
}
