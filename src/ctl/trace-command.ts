// `iopfctl trace`: a live tail of the relay's events, one line each (or the
// JSON itself with --json), until interrupted. Lost events are reported on
// stderr: the relay drops what a slow reader cannot take rather than wait.
import type { EventFilter } from "../relay/control/wire-event.js";
import type { ControlClient } from "./control-client.js";
import { followEvents } from "./follow-events.js";
import { formatEvent } from "./format-event.js";

export interface TraceOptions {
  filter: EventFilter;
  json: boolean;
  /** Stop after this many events (0: never). */
  count: number;
}

export function traceCommand(client: ControlClient, o: TraceOptions, out: (s: string) => void, err: (s: string) => void): Promise<void> {
  let seen = 0;
  return followEvents(client, o.filter, {
    event: (e) => {
      out(o.json ? JSON.stringify(e) + "\n" : formatEvent(e) + "\n");
      return o.count > 0 && ++seen >= o.count;
    },
    other: (m) => {
      if (m.type === "lost") err(`iopfctl: ${m.count} events lost: this terminal read too slowly for the relay (it never waits for viewers)\n`);
      else if (m.type === "error") err(`iopfctl: the relay refused the filter: ${m.message}\n`);
    },
    signals: ["SIGINT", "SIGTERM"],
  });
}
