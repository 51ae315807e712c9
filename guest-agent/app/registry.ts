// Who answers for which (endpoint, PASID): the guest programs registered on
// the app socket. A registration without an endpoint takes the PASID on
// every endpoint; one naming the endpoint wins over it.
import { FaultHandler } from "../handlers/handler.js";
import { Mode } from "./protocol.js";

export interface Registration {
  endpoint: number | null;
  pasid: number;
  mode: Mode;
  /** The process whose memory procmem faults in; set when mode is "procmem". */
  pid: number | null;
  /** The registering connection: answers app faults (and procmem writes routed to the app). */
  client: FaultHandler;
}

function key(endpoint: number | null, pasid: number): string {
  return `${endpoint ?? "*"}:${pasid}`;
}

export class Registry {
  private readonly byKey = new Map<string, Registration>();

  /** Adds or replaces the caller's own registration; returns why not when another client holds the key. */
  add(reg: Registration): string | null {
    const k = key(reg.endpoint, reg.pasid);
    const holder = this.byKey.get(k);
    if (holder && holder.client !== reg.client) {
      return `PASID ${reg.pasid}${reg.endpoint === null ? "" : ` on endpoint ${reg.endpoint}`} is registered by another client; it must disconnect first`;
    }
    this.byKey.set(k, reg);
    return null;
  }

  find(endpoint: number, pasid: number): Registration | undefined {
    if (this.byKey.size === 0) return undefined; // the usual case: no keys built per group
    return this.byKey.get(key(endpoint, pasid)) ?? this.byKey.get(key(null, pasid));
  }

  /** Removes every registration of client; returns them. */
  removeClient(client: FaultHandler): Registration[] {
    const gone = [...this.byKey].filter(([, r]) => r.client === client);
    for (const [k] of gone) this.byKey.delete(k);
    return gone.map(([, r]) => r);
  }
}
