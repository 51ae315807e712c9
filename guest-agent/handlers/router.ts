// Picks the handler of a group by its (endpoint, PASID): the first config
// rule that matches and can serve it. An "app" rule serves only PASIDs a
// program registered in mode "app"; a "procmem" rule without a pid only
// PASIDs registered in mode "procmem"; otherwise the search goes on. No rule
// at all means the default: INVALID, counted as such.
import { Registration, Registry } from "../app/registry.js";
import { HandlerRule, RuleMatch } from "../config.js";
import { FaultHandler, INVALID } from "./handler.js";
import { policyHandler } from "./policy.js";
import { ProcmemFaults } from "./procmem/procmem-handler.js";

export interface Route {
  /** For counters and logs: "procmem", "app", "policy", "invalid" or "default". */
  name: string;
  handler: FaultHandler;
}

const invalid: FaultHandler = { handle: () => INVALID, handleColumns: () => INVALID };
export const DEFAULT_ROUTE: Route = { name: "default", handler: invalid };

function matches(rule: RuleMatch, endpoint: number, pasidValid: boolean, pasid: number): boolean {
  if (rule.endpoint !== undefined && rule.endpoint !== endpoint) return false;
  if (rule.pasid === undefined) return true;
  return rule.pasid === "none" ? !pasidValid : pasidValid && rule.pasid === pasid;
}

export class Router {
  /** Built once: policy handlers are pure functions of their rule. */
  private readonly fixed: (Route | null)[];

  constructor(
    private readonly rules: HandlerRule[],
    private readonly registry: Registry,
    private readonly procmem: ProcmemFaults,
  ) {
    this.fixed = rules.map((r) =>
      r.handler === "policy" ? { name: "policy", handler: policyHandler(r.rules, r.otherwise) } : r.handler === "invalid" ? { name: "invalid", handler: invalid } : null,
    );
  }

  /** The route of a group, by its guest ids. */
  select(endpoint: number, pasidValid: boolean, pasid: number): Route {
    const reg: Registration | undefined = pasidValid ? this.registry.find(endpoint, pasid) : undefined;
    for (let i = 0; i < this.rules.length; i++) {
      const rule = this.rules[i]!;
      if (!matches(rule, endpoint, pasidValid, pasid)) continue;
      const fixed = this.fixed[i];
      if (fixed) return fixed;
      if (rule.handler === "app" && reg?.mode === "app") return { name: "app", handler: reg.client };
      if (rule.handler !== "procmem") continue;
      const pid = rule.pid ?? (reg?.mode === "procmem" ? reg.pid : null);
      if (pid === null) continue;
      // Writes routed to the app go to whichever program registered this PASID; none means INVALID.
      const writesTo = rule.writes === "app" ? (reg?.client ?? invalid) : null;
      return { name: "procmem", handler: this.procmem.handlerFor(pid, writesTo) };
    }
    return DEFAULT_ROUTE;
  }
}
