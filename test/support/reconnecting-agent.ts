// A test agent that keeps connecting to a relay's Unix socket and answers
// every request after a delay, so that groups are in flight when a test
// breaks something.
import { connectUnix } from "../../src/link/transport/unix.js";
import { GuestLink } from "../../src/link/guest-link.js";
import { pb } from "../../src/link/messages.js";

export interface ReconnectingAgent {
  answered: number;
  sessions: number;
  stop(): void;
}

export function reconnectingAgent(path: string, answerAfterMs: number): ReconnectingAgent {
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
        setTimeout(() => {
          state.answered += link.sendResponses(reqs.map((r) => ({ tag: r.tag, code: pb.ResponseCode.RESPONSE_SUCCESS })));
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
