// `iopfctl record FILE`: the event stream into a JSON-lines file, one event
// per line as the stream sends it; a gap (events the relay dropped because
// the recorder fell behind) is written as {"lost": N, "t": ...} so a reader
// knows the file is not complete there. Ends on SIGINT, or after --count
// events or --duration seconds.
import { createWriteStream } from "node:fs";
import type { EventFilter } from "../relay/control/wire-event.js";
import { ControlClient, CtlError } from "./control-client.js";
import { followEvents } from "./follow-events.js";

export interface RecordOptions {
  file: string;
  filter: EventFilter;
  count: number;
  durationMs: number;
}

export async function recordCommand(client: ControlClient, o: RecordOptions, err: (s: string) => void): Promise<{ events: number; lost: number }> {
  const file = createWriteStream(o.file, { flags: "wx" });
  await new Promise<void>((resolve, reject) => {
    file.once("open", () => resolve());
    file.once("error", (e: NodeJS.ErrnoException) => reject(new CtlError(`cannot create ${o.file}: ${e.message}${e.code === "EEXIST" ? "; it exists already: choose another name or remove it" : ""}`)));
  });
  let events = 0;
  let lost = 0;
  let failure: unknown = null;
  await followEvents(client, o.filter, {
    event: (e) => {
      file.write(JSON.stringify(e) + "\n");
      events++;
      return o.count > 0 && events >= o.count;
    },
    other: (m) => {
      if (m.type !== "lost") return;
      lost += m.count;
      file.write(JSON.stringify({ lost: m.count, t: Date.now() }) + "\n");
    },
    signals: ["SIGINT"],
    stopAfterMs: o.durationMs,
  }).catch((e: unknown) => {
    failure = e;
  });
  await new Promise<void>((resolve) => file.end(resolve));
  if (failure !== null) {
    // What was recorded is kept; the exit status says the recording ended early.
    err(`iopfctl: recorded ${events} events into ${o.file} before the stream ended\n`);
    throw failure;
  }
  return { events, lost };
}
