// Fans the relay's events out to WebSocket viewers without ever letting a
// viewer slow the relay. On the relay's path an event is only filtered and
// pushed onto each viewer's bounded queue; serializing and sending happen on
// a timer, in one frame per viewer per tick, and only to a viewer that has
// read what it was sent before (ws's bufferedAmount under a bound). What a
// slow viewer cannot take is dropped, counted, and told to it as
// {"type":"lost"} once it catches up. Nothing here is ever awaited.
import { WebSocket, type RawData } from "ws";
import { EVENT_KINDS, EventFilter, matches, parseSubscribe, StreamMessage, WireEvent } from "./wire-event.js";

export interface StreamLimits {
  /** Events queued for one viewer between two flushes; beyond it they are lost. */
  maxPending: number;
  /** Bytes sent to a viewer and not yet taken by its socket; above it the viewer is skipped. */
  maxBufferedBytes: number;
  flushMs: number;
  maxViewers: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = { maxPending: 4096, maxBufferedBytes: 256 * 1024, flushMs: 50, maxViewers: 32 };

interface Viewer {
  ws: WebSocket;
  /** null until the viewer's first subscribe message: nothing is sent before it. */
  filter: EventFilter | null;
  pending: WireEvent[];
  lost: number;
}

export class EventStream {
  private readonly viewers = new Set<Viewer>();
  private timer: NodeJS.Timeout | null = null;
  /** Events lost by any viewer since the relay started, for /metrics. */
  lostTotal = 0;

  constructor(private readonly software: string, private readonly limits: StreamLimits = DEFAULT_STREAM_LIMITS) {}

  get viewerCount(): number {
    return this.viewers.size;
  }

  /** On the relay's path: O(viewers), no I/O, no serialization. */
  publish(e: WireEvent): void {
    for (const v of this.viewers) {
      if (v.filter === null || !matches(v.filter, e)) continue;
      if (v.pending.length >= this.limits.maxPending) {
        v.lost++;
        this.lostTotal++;
      } else {
        v.pending.push(e);
      }
    }
  }

  add(ws: WebSocket): void {
    if (this.viewers.size >= this.limits.maxViewers) {
      ws.close(1013, `too many viewers (${this.limits.maxViewers}); close one and try again`);
      return;
    }
    const viewer: Viewer = { ws, filter: null, pending: [], lost: 0 };
    this.viewers.add(viewer);
    ws.on("message", (data: RawData) => {
      const parsed = parseSubscribe(data.toString());
      if (typeof parsed === "string") this.send(viewer, { type: "error", message: parsed });
      else viewer.filter = parsed;
    });
    // An error is followed by close; both only end this viewer.
    ws.on("error", () => undefined);
    ws.on("close", () => {
      this.viewers.delete(viewer);
      if (this.viewers.size === 0) this.stopTimer();
    });
    this.send(viewer, { type: "hello", software: this.software, kinds: EVENT_KINDS });
    this.timer ??= setInterval(() => this.flush(), this.limits.flushMs).unref();
  }

  /** Says goodbye to every viewer; one that does not answer the close within 250 ms is cut off. */
  close(): void {
    this.stopTimer();
    for (const v of this.viewers) {
      v.ws.close(1001, "relay shutting down");
      setTimeout(() => v.ws.terminate(), 250).unref();
    }
    this.viewers.clear();
  }

  private flush(): void {
    for (const v of this.viewers) {
      if (v.ws.readyState !== WebSocket.OPEN || (v.pending.length === 0 && v.lost === 0)) continue;
      if (v.ws.bufferedAmount > this.limits.maxBufferedBytes) {
        // It has not read what it was sent: keeping more for it would only grow memory.
        v.lost += v.pending.length;
        this.lostTotal += v.pending.length;
        v.pending = [];
        continue;
      }
      if (v.lost > 0) {
        this.send(v, { type: "lost", count: v.lost });
        v.lost = 0;
      }
      if (v.pending.length > 0) {
        this.send(v, { type: "events", events: v.pending });
        v.pending = [];
      }
    }
  }

  private send(v: Viewer, m: StreamMessage): void {
    if (v.ws.readyState === WebSocket.OPEN) v.ws.send(JSON.stringify(m));
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
