// The resync rule, the same on both sides: on (re)connect, or once framing
// is lost, send SYNC with a fresh random nonce, resent with backoff, and
// parse frames only from the byte after the peer's ACK of that nonce. Every
// SYNC seen is answered with an ACK of its nonce.
import { Backoff } from "./backoff.js";
import { FrameChannel } from "./frame-channel.js";
import { MarkerKind, newNonce } from "./sync-marker.js";

export interface ResyncTimers {
  /** First resend of an unanswered SYNC, doubling up to syncRetryMaxMs. */
  syncRetryMinMs: number;
  syncRetryMaxMs: number;
}

export const DEFAULT_RESYNC_TIMERS: ResyncTimers = { syncRetryMinMs: 100, syncRetryMaxMs: 2000 };

export class Resync {
  private nonce: bigint | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly backoff: Backoff;
  /** Nonce of the last peer SYNC answered: a resent SYNC is not a new peer. */
  private lastPeerNonce: bigint | null = null;

  constructor(
    private readonly channel: FrameChannel,
    timers: ResyncTimers,
  ) {
    this.backoff = new Backoff(timers.syncRetryMinMs, timers.syncRetryMaxMs);
  }

  /** Starts hunting with a fresh nonce; the channel parses nothing until its ACK. */
  start(): void {
    this.stopTimer();
    this.nonce = newNonce();
    this.channel.hunt(this.nonce);
    this.backoff.reset();
    this.sendSync();
  }

  get hunting(): boolean {
    return this.nonce !== null;
  }

  /**
   * Handles a marker. Returns "aligned" when it was the ACK we waited for,
   * "new-peer-sync" for a SYNC with a nonce not seen before (the peer lost
   * its state or alignment), "resent-sync" for a repeat, or null.
   */
  onMarker(kind: MarkerKind, nonce: bigint): "aligned" | "new-peer-sync" | "resent-sync" | null {
    if (kind === MarkerKind.SYNC) {
      this.channel.sendMarker(MarkerKind.ACK, nonce);
      if (nonce === this.lastPeerNonce) return "resent-sync";
      this.lastPeerNonce = nonce;
      return "new-peer-sync";
    }
    if (nonce === this.nonce && this.channel.aligned) {
      this.nonce = null;
      this.stopTimer();
      return "aligned";
    }
    return null;
  }

  stop(): void {
    this.stopTimer();
    this.nonce = null;
  }

  private sendSync(): void {
    if (this.nonce === null || this.channel.isClosed) return;
    this.channel.sendMarker(MarkerKind.SYNC, this.nonce);
    this.timer = setTimeout(() => this.sendSync(), this.backoff.delay());
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
