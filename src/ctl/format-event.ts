// One line per event for `iopfctl trace`: time, kind, device and PASID, then
// what happened, in columns that line up in a scrolling terminal.
import type { WireEvent } from "../relay/control/wire-event.js";
import { microseconds } from "./text-table.js";

export function formatEvent(e: WireEvent): string {
  const time = new Date(e.t).toISOString().slice(11, 23);
  const who = e.dev === undefined ? "" : `dev ${e.dev}${e.pasid !== undefined ? ` pasid ${e.pasid}` : ""}`;
  const head = `${time}  ${e.kind.padEnd(12)}  ${who.padEnd(18)}`;
  switch (e.kind) {
    case "group-read":
      return `${head}  ${e.pages} page${e.pages === 1 ? "" : "s"}, cookie ${e.cookie}`;
    case "answered":
    case "expired":
      return `${head}  ${e.code} by ${e.origin} after ${microseconds(e.latencyUs ?? 0)}`;
    case "ended":
      return `${head}  no answer from the relay: ${e.reason === "kernel-ended" ? "the kernel answered it itself" : "its source went away"}`;
    case "sent":
      return `${head}  ${e.count} group${e.count === 1 ? "" : "s"} to session ${e.epoch}`;
    case "dropped":
      return `${head}  guest answer for tag ${e.tag} dropped: ${e.reason}`;
    case "session-up":
      return `${head}  session ${e.epoch} with ${e.agent}`;
    case "session-down":
      return `${head}  session ${e.epoch} ended: ${e.reason}`;
  }
}
