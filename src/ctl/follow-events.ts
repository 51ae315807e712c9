// Following the relay's event stream until enough: the part `iopfctl trace`
// and `iopfctl record` share. It ends once: when the handler has seen enough,
// on one of the given signals, after stopAfterMs, or when the relay closes
// the stream (reported through err unless it had already ended).
import type { EventFilter, StreamMessage, WireEvent } from "../relay/control/wire-event.js";
import type { ControlClient } from "./control-client.js";

export interface EventFollower {
  /** One event; true when no more are wanted. */
  event(e: WireEvent): boolean;
  /** The stream's other messages: its hello, "lost" counts and "error" refusals. */
  other(m: Exclude<StreamMessage, { type: "events" }>): void;
  signals: NodeJS.Signals[];
  /** Stop after this long (0 or absent: never). */
  stopAfterMs?: number;
}

export function followEvents(client: ControlClient, filter: EventFilter, f: EventFollower, err: (s: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let close: (() => void) | null = null;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      close?.();
      resolve();
    };
    const onMessage = (m: StreamMessage): void => {
      if (done) return;
      if (m.type !== "events") return f.other(m);
      for (const e of m.events) {
        if (f.event(e)) return finish();
      }
    };
    client.events(filter, onMessage, (reason) => {
      if (!done) err(`iopfctl: the relay closed the event stream: ${reason}\n`);
      finish();
    }).then((c) => {
      close = c;
      for (const s of f.signals) process.once(s, finish);
      if (f.stopAfterMs) setTimeout(finish, f.stopAfterMs).unref();
    }, reject);
  });
}
