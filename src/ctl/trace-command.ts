// `iopfctl trace`: a live tail of the relay's events, one line each (or the
// JSON itself with --json), until interrupted. Lost events are reported on
// stderr: the relay drops what a slow reader cannot take rather than wait.
import type { EventFilter, StreamMessage } from "../relay/control/wire-event.js";
import { ControlClient } from "./control-client.js";
import { formatEvent } from "./format-event.js";

export interface TraceOptions {
  filter: EventFilter;
  json: boolean;
  /** Stop after this many events (0: never). */
  count: number;
}

export function traceCommand(client: ControlClient, o: TraceOptions, out: (s: string) => void, err: (s: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = 0;
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
      if (m.type === "lost") err(`iopfctl: ${m.count} events lost: this terminal read too slowly for the relay (it never waits for viewers)\n`);
      else if (m.type === "error") err(`iopfctl: the relay refused the filter: ${m.message}\n`);
      if (m.type !== "events") return;
      for (const e of m.events) {
        out(o.json ? JSON.stringify(e) + "\n" : formatEvent(e) + "\n");
        if (o.count > 0 && ++seen >= o.count) return finish();
      }
    };
    client.events(o.filter, onMessage, (reason) => {
      if (!done) err(`iopfctl: the relay closed the event stream: ${reason}\n`);
      finish();
    }).then((c) => {
      close = c;
      process.once("SIGINT", finish);
      process.once("SIGTERM", finish);
    }, reject);
  });
}
