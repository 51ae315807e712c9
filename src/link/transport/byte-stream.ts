// The one interface every guest-link transport implements. The session layer
// sees only this: bytes in, bytes out, and the peer coming and going.
//
// Events start flowing on a later turn of the event loop than the one that
// hands the stream over (the connect() promise resolving, a listener's
// "connection"): attach listeners right away, in that turn, and none is missed.

export interface ByteStreamEvents {
  /** Bytes from the peer, in order. The chunk now belongs to the listener: the stream never reuses it (the frame parser keeps views into it). */
  data: (chunk: Buffer) => void;
  /** The write buffer drained after write() returned false. */
  drain: () => void;
  /**
   * The peer went away but the stream stays open and usable, and a new peer
   * may appear on it (a virtio-serial port whose host disconnected: read()
   * returns 0 and poll() says POLLHUP). Bytes written meanwhile may reach the
   * next peer late, which is why every session starts with a resync.
   * Emitted once per absence, including one that is already there when the
   * stream opens; the next "data" is the first sign of a new peer. Only
   * streams without a connection boundary (the character device) emit it:
   * on a socket the peer leaving is "close".
   */
  hangup: () => void;
  /** The stream is closed for good; err is set when it failed. */
  close: (err?: Error) => void;
}

export interface ByteStream {
  /** Where this stream goes, for logs: "unix:/run/iopf.sock", "chardev:/dev/vport0p1". */
  readonly description: string;
  /**
   * Queues bytes; false asks the caller to wait for "drain" before writing
   * more. The stream may hold on to chunk until it is written: do not reuse
   * it. After end(), destroy() or "close", nothing is written and it returns false.
   */
  write(chunk: Uint8Array): boolean;
  /** Closes after queued bytes are written. */
  end(): void;
  /** Closes now, dropping queued bytes; "close" follows with err (once, whoever closed first). */
  destroy(err?: Error): void;
  on<E extends keyof ByteStreamEvents>(event: E, listener: ByteStreamEvents[E]): this;
  off<E extends keyof ByteStreamEvents>(event: E, listener: ByteStreamEvents[E]): this;
  /**
   * Set by streams whose OS resource can outlive "close" (a character
   * device's fd, kept while a read sleeps in the kernel): resolves once it is
   * gone. A process must not exit before, or libuv's shutdown waits for the
   * sleeping read for ever.
   */
  readonly released?: Promise<void>;
}

/** Accepts streams: a listening Unix or TCP socket, a WebSocket server. */
export interface StreamListener {
  readonly description: string;
  on(event: "connection", listener: (stream: ByteStream) => void): this;
  on(event: "error", listener: (err: Error) => void): this;
  /** Stops accepting and frees the address (port, socket file); accepted streams stay open. */
  close(): Promise<void>;
}
