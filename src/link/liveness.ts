// Heartbeats of an established session: send one when nothing else was sent
// for an interval; declare the peer gone when nothing at all arrived for
// three intervals.
import { FrameChannel } from "./frame-channel.js";

export const MISSED_HEARTBEATS_ALLOWED = 3;

export class Liveness {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly channel: FrameChannel,
    private readonly sendHeartbeat: () => void,
    private readonly onSilence: (silentMs: number) => void,
  ) {}

  start(intervalMs: number): void {
    this.stop();
    const tickMs = Math.max(10, Math.floor(intervalMs / 2));
    this.timer = setInterval(() => {
      const now = performance.now();
      const silentMs = now - this.channel.lastReceivedMs;
      if (silentMs >= MISSED_HEARTBEATS_ALLOWED * intervalMs) {
        this.stop();
        this.onSilence(silentMs);
        return;
      }
      if (now - this.channel.lastSentMs >= intervalMs) this.sendHeartbeat();
    }, tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
