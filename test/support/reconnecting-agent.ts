// A test agent that keeps connecting to a relay's Unix socket and answers
// every request after a delay (or only those `answer` picks a code for), so
// that groups are in flight when a test breaks something.
import { connectUnix } from "../../src/link/transport/unix.js";
import { GuestLink } from "../../src/link/guest-link.js";
import { pb, WirePageRequest } from "../../src/link/messages.js";

export interface ReconnectingAgent {
  answered: number;
  sessions: number;
  stop(): void;
}

/** A request's answer code, or null to leave it unanswered (its deadline answers it). */
export type AnswerPolicy = (req: WirePageRequest) => number | null;

export function reconnectingAgent(path: string, answerAfterMs: number, answer: AnswerPolicy = () => pb.ResponseCode.RESPONSE_SUCCESS): ReconnectingAgent {
  const state = { answered: 0, sessions: 0, stopped: false, link: null as GuestLink | null };
  const attempt = async (): Promise<void> => {
    if (state.stopped) return;
    let stream;
    try {
      stream = await connectUnix(path);
    } catch {
      setTimeout(() => void attempt(), 50);
      return;
    }
    const link: GuestLink = new GuestLink(stream, {
      sessionUp: () => state.sessions++,
      pageRequests: (reqs) => {
        const answers = reqs.requests.flatMap((r) => {
          const code = answer(r);
          return code === null ? [] : [{ tag: r.tag, code }];
        });
        if (answers.length === 0) return;
        setTimeout(() => {
          state.answered += link.sendResponses(answers.map((a) => a.tag), answers.map((a) => a.code));
        }, answerAfterMs);
      },
      cancels: () => undefined,
      sessionDown: () => undefined,
      handshakeRefused: () => undefined,
      closed: () => {
        state.link = null;
        setTimeout(() => void attempt(), 50);
      },
    }, { software: "test-agent" });
    state.link = link;
    link.start();
  };
  void attempt();
  return {
    get answered() { return state.answered; },
    get sessions() { return state.sessions; },
    stop: () => {
      state.stopped = true;
      state.link?.close();
    },
  };
}
