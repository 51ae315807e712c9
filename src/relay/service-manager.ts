// Telling systemd where the relay stands, for a Type=notify unit: READY=1
// once it serves (its agent channel listens or connects, its control server
// serves), STOPPING=1 when it starts answering what is left. Under --keeper
// the relay child sends these, not the keeper (the unit's main PID): the
// unit says NotifyAccess=all for that. Outside systemd ($NOTIFY_SOCKET unset)
// nothing is sent.
import { sdNotify } from "../kernel/sd-notify.js";
import { Logger } from "./log.js";

export function notifyServiceManager(state: "READY=1" | "STOPPING=1", log: Logger): void {
  try {
    if (sdNotify(state)) log.level("debug", "told the service manager", { state });
  } catch (err) {
    log.level("warn", "cannot tell the service manager; a Type=notify unit waits for READY=1 until its start times out", { state, error: (err as Error).message });
  }
}
