// policy: static rules from the config, for tests and lock-down. Each page
// takes the answer of the first rule whose range holds its address and whose
// permissions cover what the page asks (the privileged bit aside); a page no
// rule covers takes `otherwise`. The group's answer is its worst page's.
import type { PageRequestColumns } from "../../src/link/hot-codec.js";
import { WirePageRequest } from "../../src/link/messages.js";
import { PolicyRule } from "../config.js";
import { AnswerName, codeOf, FaultHandler, Perm, ResponseCode, SUCCESS, worst } from "./handler.js";

const ACCESS = Perm.READ | Perm.WRITE | Perm.EXEC;

export function policyHandler(rules: PolicyRule[], otherwise: AnswerName): FaultHandler {
  const fallback = codeOf(otherwise);
  const answers = rules.map((r) => codeOf(r.answer));
  const pageAnswer = (address: number, perm: number): ResponseCode => {
    const asked = perm & ACCESS;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (address >= r.start && address < r.end && (asked & ~r.perm) === 0) return answers[i]!;
    }
    return fallback;
  };
  return {
    handle(req: WirePageRequest): ResponseCode {
      let code = SUCCESS;
      for (const page of req.pages) code = worst(code, pageAnswer(page.address, page.perm));
      return code;
    },
    handleColumns(requests: PageRequestColumns, i: number): ResponseCode {
      let code = SUCCESS;
      for (let j = 0; j < requests.pageCount(i); j++) code = worst(code, pageAnswer(requests.address(i, j), requests.perm(i, j)));
      return code;
    },
  };
}
