// policy: static rules from the config, for tests and lock-down. Each page
// takes the answer of the first rule whose range holds its address and whose
// permissions cover what the page asks (the privileged bit aside); a page no
// rule covers takes `otherwise`. The group's answer is its worst page's.
import { WirePageRequest } from "../../src/link/messages.js";
import { PolicyRule } from "../config.js";
import { AnswerName, codeOf, FaultHandler, Perm, ResponseCode, SUCCESS, worst } from "./handler.js";

const ACCESS = Perm.READ | Perm.WRITE | Perm.EXEC;

export function policyHandler(rules: PolicyRule[], otherwise: AnswerName): FaultHandler {
  const fallback = codeOf(otherwise);
  const answers = rules.map((r) => codeOf(r.answer));
  return {
    handle(req: WirePageRequest): ResponseCode {
      let code = SUCCESS;
      for (const page of req.pages) {
        const asked = page.perm & ACCESS;
        const i = rules.findIndex((r) => page.address >= r.start && page.address < r.end && (asked & ~r.perm) === 0);
        code = worst(code, i === -1 ? fallback : (answers[i] as ResponseCode));
      }
      return code;
    },
  };
}
