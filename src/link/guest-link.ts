// The guest (agent) side of the guest link. The agent follows: it answers
// SYNCs, resyncs itself when framing is lost or the host hangs up, and
// answers each HELLO with a Welcome that narrows the offer. It checks what
// the host sends too: batches within max_batch, groups within max_in_flight.
import { Flag } from "./frame-header.js";
import { LinkError, LinkErrorCode } from "./link-error.js";
import { LinkPeer } from "./link-peer.js";
import { encodePageResponsesFrame, FrameWriter, PageRequestColumns, responseEntrySize } from "./hot-codec.js";
import { Inbound, pb, WireEndpoint, WireHello, WireWelcome } from "./messages.js";
import { Agreement, HANDSHAKE_MAX_PAYLOAD, answerOffer, Capabilities, checkCapabilities, OUR_CAPABILITIES } from "./negotiation.js";
import { RequestCode } from "./request-code.js";
import { DEFAULT_RESYNC_TIMERS, ResyncTimers } from "./resync.js";
import { ByteStream } from "./transport/byte-stream.js";
import { iopf } from "../gen/guest_link.js";


export interface GuestSession {
  epoch: number;
  agreement: Agreement;
  model: iopf.link.v1.ViommuModel;
  endpoints: WireEndpoint[];
  relaySoftware: string;
}

/** What the agent does with the link's events. */
export interface GuestLinkHandler {
  sessionUp(session: GuestSession): void;
  /** Every request must be answered once with sendResponses, unless cancelled. The columns are read in the call or copied. */
  pageRequests(requests: PageRequestColumns): void;
  cancels(tags: number[], reason: iopf.link.v1.CancelReason): void;
  sessionDown(reason: string): void;
  /** A HELLO was refused; the text names both sides' values. */
  handshakeRefused(reason: string): void;
  closed(err?: Error): void;
}

export interface GuestLinkOptions {
  capabilities?: Capabilities;
  software: string;
  resyncTimers?: ResyncTimers;
}

export class GuestLink extends LinkPeer {
  private session: GuestSession | null = null;
  /** Tags received and neither answered nor cancelled, in this session. */
  private readonly held = new Set<number>();
  private readonly capabilities: Capabilities;
  /** Page response frames are encoded here, then copied out: one buffer for the link's life. */
  private readonly frames = new FrameWriter();

  constructor(
    stream: ByteStream,
    private readonly handler: GuestLinkHandler,
    private readonly options: GuestLinkOptions,
  ) {
    super(stream, "relay", options.resyncTimers ?? DEFAULT_RESYNC_TIMERS);
    this.capabilities = options.capabilities ?? OUR_CAPABILITIES;
    checkCapabilities("agent", this.capabilities);
  }

  get current(): GuestSession | null {
    return this.session;
  }

  get heldCount(): number {
    return this.held.size;
  }

  /**
   * Answers held tags: tags[i] with codes[i]. Answers for tags not held
   * (cancelled, or from a session that ended) are dropped: the host no
   * longer waits for them. Returns how many answers were sent.
   */
  sendResponses(tags: readonly number[], codes: readonly number[]): number {
    const session = this.session;
    if (!session) return 0;
    let liveTags = tags, liveCodes = codes;
    for (let i = 0; i < tags.length; i++) {
      if (this.held.delete(tags[i]!)) continue;
      // Rare: some are not held any more; keep the ones that are (this loop deletes them from held).
      const keptTags = tags.slice(0, i), keptCodes = codes.slice(0, i);
      for (let j = i + 1; j < tags.length; j++) {
        if (!this.held.delete(tags[j]!)) continue;
        keptTags.push(tags[j]!);
        keptCodes.push(codes[j]!);
      }
      liveTags = keptTags;
      liveCodes = keptCodes;
      break;
    }
    this.sendPacked(liveTags.length, (i) => responseEntrySize(liveTags[i]!, liveCodes[i]!), session.agreement.limits,
      (from, to, bytes) => encodePageResponsesFrame(this.frames, RequestCode.PAGE_RESPONSES, this.channel.newRequestId(), liveTags, liveCodes, from, to, bytes));
    return liveTags.length;
  }

  /** Sets the number of groups the agent will hold (the credit window). */
  grantCredit(window: number): void {
    if (!this.session) return;
    this.channel.send(RequestCode.CREDIT, 0, this.channel.newRequestId(), pb.CreditGrant, { window });
  }

  protected sessionActive(): boolean {
    return this.session !== null;
  }

  protected onAligned(): void {
    // Nothing to send: the host leads with HELLO.
  }

  protected onNewPeerSync(): void {
    this.endSession("relay sent a new SYNC: it restarted or lost alignment");
  }

  protected onSessionMessage(msg: Inbound): void {
    switch (msg.kind) {
      case "hello":
        this.onHello(msg.id, msg.body);
        return;
      case "page-requests":
        this.onPageRequests(msg.body);
        return;
      case "page-cancels": {
        if (!this.requireSession(msg.kind)) return;
        const tags = msg.body.tags.filter((t) => this.held.delete(t));
        if (tags.length > 0) this.handler.cancels(tags, msg.body.reason);
        return;
      }
      case "error-reply":
        return;
      case "welcome":
      case "page-responses":
      case "credit":
        this.fail(new LinkError(LinkErrorCode.UNEXPECTED_MESSAGE, `the relay sent ${msg.kind}, which only the agent may send`));
        return;
    }
  }

  protected endSession(reason: string): void {
    const wasUp = this.session;
    this.session = null;
    this.held.clear();
    this.liveness.stop();
    // Until the next handshake agrees on one, the handshake's limit applies again.
    this.channel.setMaxPayload(HANDSHAKE_MAX_PAYLOAD);
    if (wasUp) this.handler.sessionDown(reason);
  }

  protected onDrain(): void {
    // Answers are small and few per request; the agent does not throttle them.
  }

  protected onClosed(err?: Error): void {
    this.handler.closed(err);
  }

  private onHello(id: number, hello: WireHello): void {
    this.endSession("the relay started a new session");
    let agreement: Agreement;
    try {
      agreement = answerOffer({ versionMin: hello.versionMin, versionMax: hello.versionMax, features: hello.features, limits: hello.limits }, this.capabilities);
    } catch (err) {
      const e = err as LinkError;
      this.channel.send(RequestCode.HELLO, Flag.REPLY | Flag.ERROR, id, pb.Error, { code: e.code, message: e.detail });
      this.handler.handshakeRefused(e.message);
      return;
    }
    const epoch = hello.sessionEpoch;
    this.channel.send(RequestCode.HELLO, Flag.REPLY, id, pb.Welcome, {
      version: agreement.version,
      features: agreement.features,
      limits: agreement.limits,
      sessionEpoch: epoch,
      software: this.options.software,
    });
    this.channel.setMaxPayload(agreement.limits.maxPayload);
    this.session = { epoch, agreement, model: hello.model, endpoints: hello.endpoints, relaySoftware: hello.software };
    this.liveness.start(agreement.limits.heartbeatMs);
    this.handler.sessionUp(this.session);
  }

  private onPageRequests(requests: PageRequestColumns): void {
    const session = this.requireSession("page-requests");
    if (!session) return;
    const { maxBatch, maxInFlight } = session.agreement.limits;
    if (requests.count > maxBatch) {
      this.fail(new LinkError(LinkErrorCode.BATCH_TOO_LARGE, `${requests.count} page requests in one frame, max_batch is ${maxBatch}`));
      return;
    }
    for (let i = 0; i < requests.count; i++) {
      const tag = requests.tag(i);
      if (this.held.has(tag)) {
        this.fail(new LinkError(LinkErrorCode.UNEXPECTED_MESSAGE, `tag ${tag} sent again while the agent still holds it`));
        return;
      }
      if (this.held.size >= maxInFlight) {
        this.fail(new LinkError(LinkErrorCode.CREDIT_EXCEEDED, `more than max_in_flight ${maxInFlight} groups held`));
        return;
      }
      this.held.add(tag);
    }
    this.handler.pageRequests(requests);
  }

  private requireSession(what: string): GuestSession | null {
    if (this.session) return this.session;
    this.fail(new LinkError(LinkErrorCode.UNEXPECTED_MESSAGE, `the relay sent ${what} outside a session`));
    return null;
  }
}
