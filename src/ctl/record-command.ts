// `iopfctl record FILE`: the event stream into a JSON-lines file, one event
// per line as the stream sends it; a gap (events the relay dropped because
// the recorder fell behind) is written as {"lost": N, "t": ...} so a reader
// knows the file is not complete there. Ends on SIGINT, or after --count
// events or --duration seconds.
import { createWriteStream } from "node:fs";
import type { EventFilter, StreamMessage } from "../relay/control/wire-event.js";
import { ControlClient, CtlError } from "./control-client.js";

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
  await new Promise<void>((resolve, reject) => {
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
      if (m.type === "lost") {
        lost += m.count;
        file.write(JSON.stringify({ lost: m.count, t: Date.now() }) + "\n");
      }
      if (m.type !== "events") return;
      for (const e of m.events) {
        file.write(JSON.stringify(e) + "\n");
        events++;
        if (o.count > 0 && events >= o.count) return finish();
      }
    };
    client.events(o.filter, onMessage, (reason) => {
      if (!done) err(`iopfctl: the relay closed the event stream: ${reason}\n`);
      finish();
    }).then((c) => {
      close = c;
      process.once("SIGINT", finish);
      if (o.durationMs > 0) setTimeout(finish, o.durationMs).unref();
    }, reject);
  });
  await new Promise<void>((resolve) => file.end(resolve));
  return { events, lost };
}
