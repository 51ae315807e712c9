// Character device transport: the guest side of a virtio-serial port
// (/dev/vportNpM). It runs inside the guest under plain node with no native
// modules, so it uses only fs on a blocking fd, through libuv's thread pool:
// libuv treats a character device as a file, and net.Socket cannot wrap one.
//
// What the port does (Linux drivers/char/virtio_console.c, 6.12):
// - open: one opener at a time, a second gets EBUSY (port_fops_open).
// - read with no host connected and nothing buffered returns 0 at once;
//   bytes that arrived before the host left are still returned first;
//   with a host and no data, a blocking read sleeps until data comes or the
//   host leaves (port_fops_read, will_read_block).
// - write with no host connected sleeps until a host connects (a blocking
//   fd; O_NONBLOCK would give EAGAIN): will_write_block() is true while
//   !host_connected. Each write takes at most 32 KiB (port_fops_write).
// - poll reports POLLHUP while no host is connected (port_fops_poll); Node
//   cannot poll a file, so the read()=0 answer is what we watch instead.
// - hot-unplug makes read and write fail with ENODEV: that one is final.
// - closing the fd discards what the guest had not read yet, and bytes
//   reaching a closed port are dropped (port_fops_release, in_intr): keep
//   the port open for the agent's whole life, across host restarts.
// A pty master, which tests use in the port's place, differs only in saying
// "no peer" with EIO instead of 0 and in buffering a few KiB of writes
// before it blocks.
import { close, constants, fstat, open, read, write } from "node:fs";
import { Backoff } from "../backoff.js";
import type { ByteStream } from "./byte-stream.js";
import { StreamEvents } from "./stream-events.js";

const READ_SIZE = 64 * 1024;
/** port_fops_write copies at most 32 KiB per call; larger writes come back short. */
const MAX_WRITE = 32 * 1024;
/** write() returns false while more than this waits to be written. */
const HIGH_WATER = 256 * 1024;
/** "drain" fires once the queue is back under this after write() returned false. */
const LOW_WATER = 64 * 1024;
/** While no peer is there, read() is retried after this, doubling up to the maximum. */
export const NO_PEER_RETRY_FIRST_MS = 20;
export const NO_PEER_RETRY_MAX_MS = 250;

/**
 * A ByteStream over an open character device fd, which it owns.
 *
 * One read is always in flight while a peer is there (it sleeps in the
 * kernel on a pool thread until bytes come), and at most one write, so the
 * stream holds at most two of libuv's four pool threads (raise
 * UV_THREADPOOL_SIZE if the process leans on the pool otherwise). They are
 * separate jobs, so a write that waits for a host never holds reads back,
 * and the kernel does not serialize them either: the f_pos lock is taken
 * only for regular files and directories (FMODE_ATOMIC_POS, fs/open.c).
 *
 * A read sleeping in the kernel cannot be cancelled: after end() or
 * destroy(), "close" is emitted at once but the fd is closed only when the
 * in-flight read (and write) return, i.e. when bytes arrive or the host
 * leaves. Until then the port stays open (EBUSY to a new opener), and no
 * exit can end the process: process.exit() waits in libuv's shutdown for the
 * sleeping pool thread. `released` resolves once the fd is closed; the link
 * makes the peer write a last reply when it closes (LinkPeer.close) so that
 * this happens while a host is connected.
 */
export class CharDeviceStream extends StreamEvents implements ByteStream {
  private fd: number | undefined;
  private readonly readBuffer = Buffer.allocUnsafe(READ_SIZE);
  private reading = false;
  private writing = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly retry = new Backoff(NO_PEER_RETRY_FIRST_MS, NO_PEER_RETRY_MAX_MS);
  private peerAbsent = false;
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  private needDrain = false;
  private ending = false;
  private markReleased: () => void = () => undefined;
  readonly released: Promise<void> = new Promise((resolve) => (this.markReleased = resolve));
  private shutDown = false;

  constructor(
    fd: number,
    readonly description: string,
  ) {
    super();
    this.fd = fd;
    this.startRead();
  }

  private startRead(): void {
    const fd = this.fd;
    if (fd === undefined || this.shutDown) return;
    this.reading = true;
    // position null: read(), not pread(), which a nonseekable port refuses.
    read(fd, this.readBuffer, 0, READ_SIZE, null, (err, n) => {
      this.reading = false;
      if (this.shutDown) return this.releaseFd();
      if (err) {
        if (err.code === "EIO") return this.noPeer();
        return this.shutdown(new Error(`${this.description}: read failed: ${err.message}${unplugHint(err)}`, { cause: err }));
      }
      if (n === 0) return this.noPeer();
      this.peerAbsent = false;
      this.retry.reset();
      // A "data" chunk belongs to its listener for good (the frame parser
      // keeps views into it), so it is a copy: readBuffer is read into again.
      this.emit("data", Buffer.from(this.readBuffer.subarray(0, n)));
      // Closing: no new read. One posted now would sleep past the close (the
      // peer's last reply may be the bytes just read), holding the fd and the exit.
      if (!this.ending) this.startRead();
    });
  }

  /**
   * No peer: read() said 0 (no host on the port) or EIO (no slave on a pty).
   * The fd stays good, so keep it and look again later, backing off; the
   * first read that sleeps instead of answering 0 is the peer being back.
   */
  private noPeer(): void {
    if (!this.peerAbsent) {
      this.peerAbsent = true;
      this.emit("hangup");
      if (this.shutDown) return; // a hangup listener destroyed the stream
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.startRead();
    }, this.retry.delay());
  }

  write(chunk: Uint8Array): boolean {
    if (this.shutDown || this.ending) return false;
    if (chunk.length > 0) {
      this.queue.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      this.queuedBytes += chunk.length;
      this.flush();
    }
    if (this.queuedBytes > HIGH_WATER) this.needDrain = true;
    return !this.needDrain;
  }

  /** Starts the next write unless one is in flight; only one ever is, to keep order. */
  private flush(): void {
    const fd = this.fd;
    if (this.writing || fd === undefined || this.shutDown) return;
    if (this.queuedBytes === 0) {
      if (this.ending) this.shutdown();
      return;
    }
    const piece = this.nextPiece();
    this.writing = true;
    write(fd, piece, 0, piece.length, null, (err, written) => {
      this.writing = false;
      if (this.shutDown) return this.releaseFd();
      if (err) {
        return this.shutdown(new Error(`${this.description}: write failed: ${err.message}${unplugHint(err)}`, { cause: err }));
      }
      this.consume(written);
      if (this.needDrain && this.queuedBytes <= LOW_WATER) {
        this.needDrain = false;
        this.emit("drain");
      }
      this.flush();
    });
  }

  /** Up to MAX_WRITE queued bytes: small writes are joined so each costs one syscall. */
  private nextPiece(): Buffer {
    const first = this.queue[0] as Buffer;
    if (first.length >= MAX_WRITE || this.queue.length === 1) return first.subarray(0, MAX_WRITE);
    const parts: Buffer[] = [];
    let size = 0;
    for (const buf of this.queue) {
      if (size + buf.length > MAX_WRITE) break;
      parts.push(buf);
      size += buf.length;
    }
    return Buffer.concat(parts, size);
  }

  /** Drops n written bytes from the front of the queue (a write may be short). */
  private consume(n: number): void {
    this.queuedBytes -= n;
    while (n > 0) {
      const head = this.queue[0] as Buffer;
      if (head.length > n) {
        this.queue[0] = head.subarray(n);
        return;
      }
      this.queue.shift();
      n -= head.length;
    }
  }

  /**
   * Closes once every queued byte is written to the device. What the peer
   * has not read by then is the device's: a virtio port has already put it
   * on its virtqueue; a pty drops it when the master closes.
   */
  end(): void {
    if (this.shutDown || this.ending) return;
    this.ending = true;
    this.flush();
  }

  destroy(err?: Error): void {
    this.shutdown(err);
  }

  private shutdown(err?: Error): void {
    if (this.shutDown) return;
    this.shutDown = true;
    clearTimeout(this.retryTimer);
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.emitClose(err);
    this.releaseFd();
  }

  /**
   * Closes the fd once no read or write is in flight: closing under a
   * queued pool job could let it run on a reused fd number.
   */
  private releaseFd(): void {
    const fd = this.fd;
    if (fd === undefined || this.reading || this.writing) return;
    this.fd = undefined;
    // Nothing is left to report a close error to: "close" was emitted.
    close(fd, () => this.markReleased());
  }
}

function unplugHint(err: NodeJS.ErrnoException): string {
  return err.code === "ENODEV" ? " (the port was unplugged)" : "";
}

/** Why open() failed, and what to do about it. */
function openFailure(path: string, err: NodeJS.ErrnoException): Error {
  const what = `chardev:${path}: cannot open`;
  const hints: Record<string, string> = {
    ENOENT: `no such file (ENOENT). Expected a virtio-serial port such as /dev/vport0p1; the ports and their names are under /sys/class/virtio-ports.`,
    EBUSY: `the port is already open (EBUSY); a virtio-serial port admits one opener at a time. Stop the other process and retry.`,
    ENXIO: `no port behind this device (ENXIO): it was unplugged, or it is a console port (those are /dev/hvcN).`,
    EACCES: `permission denied (EACCES); run as a user who may open it.`,
  };
  const hint = (err.code && hints[err.code]) ?? err.message;
  return new Error(`${what}: ${hint}`, { cause: err });
}

/** Opens a character device read-write (blocking, not as a controlling tty). */
export function openCharDevice(path: string): Promise<CharDeviceStream> {
  return new Promise((resolve, reject) => {
    open(path, constants.O_RDWR | constants.O_NOCTTY, (err, fd) => {
      if (err) return reject(openFailure(path, err));
      fstat(fd, (statErr, st) => {
        if (statErr || !st.isCharacterDevice()) {
          close(fd, () => {});
          const found = statErr ? statErr.message : "it is not a character device";
          return reject(new Error(`chardev:${path}: ${found}; expected a virtio-serial port such as /dev/vport0p1.`));
        }
        resolve(new CharDeviceStream(fd, `chardev:${path}`));
      });
    });
  });
}
