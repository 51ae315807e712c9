// Following the relay's event stream until enough: the part `iopfctl trace`
// and `iopfctl record` share. It ends once: when the handler has seen enough,
// on one of the given signals or after stopAfterMs (resolved), or when the
// relay closes the stream or goes away first (rejected with a CtlError: what
// was followed is incomplete, and the exit status must say so).
import type { EventFilter, StreamMessage, WireEvent } from "../relay/control/wire-event.js";
import { CtlError, type ControlClient } from "./control-client.js";

export interface EventFollower {
  /** One event; true when no more are wanted. */
  event(e: WireEvent): boolean;
  /** The stream's other messages: its hello, "lost" counts and "error" refusals. */
  other(m: Exclude<StreamMessage, { type: "events" }>): void;
  signals: NodeJS.Signals[];
  /** Stop after this long (0 or absent: never). */
  stopAfterMs?: number;
}

/** Close codes of a WebSocket that ended without the relay's goodbye. */
const LOST = new Set([1005, 1006]);

export function followEvents(client: ControlClient, filter: EventFilter, f: EventFollower): Promise<void> {
  return new Promise((resolve, reject) => {
    let close: (() => void) | null = null;
    let done = false;
    const finish = (failure?: CtlError): void => {
      if (done) return;
      done = true;
      for (const s of f.signals) process.off(s, onSignal);
      close?.();
      if (failure) reject(failure);
      else resolve();
    };
    const onSignal = (): void => finish();
    const onMessage = (m: StreamMessage): void => {
      if (done) return;
      if (m.type !== "events") return f.other(m);
      for (const e of m.events) {
        if (f.event(e)) return finish();
      }
    };
    client.events(filter, onMessage, (code, reason) => {
      finish(new CtlError(LOST.has(code) ? "the connection to the relay was lost (did it stop?)" : `the relay closed the event stream: ${reason || `code ${code}`}`));
    }).then((c) => {
      close = c;
      for (const s of f.signals) process.once(s, onSignal);
      if (f.stopAfterMs) setTimeout(() => finish(), f.stopAfterMs).unref();
    }, reject);
  });
}
