// The host (relay) side of the guest link. The host leads the handshake:
// once its receiver is aligned, and again whenever it answers a new SYNC of
// the agent, it sends HELLO; the agent's Welcome may only narrow the offer.
// The agent is untrusted: anything it may not send ends the session.
import { Flag } from "./frame-header.js";
import { batchEntrySize, encodePageRequestsFrame, FrameWriter, PageResponseColumns, pageRequestSize } from "./hot-codec.js";
import { LinkError, LinkErrorCode, linkErrorName } from "./link-error.js";
import { BatchOutcome, GoodbyeReason, LinkPeer, PEER_MESSAGE_CHARS, SessionEndCause } from "./link-peer.js";
import { Inbound, pb, WireWelcome } from "./messages.js";
import { peerText } from "./peer-text.js";
import { Agreement, HANDSHAKE_MAX_PAYLOAD, Capabilities, checkAnswer, checkCapabilities, OUR_CAPABILITIES } from "./negotiation.js";
import { RequestCode } from "./request-code.js";
import { DEFAULT_RESYNC_TIMERS, ResyncTimers } from "./resync.js";
import { ByteStream } from "./transport/byte-stream.js";
import { iopf } from "../gen/guest_link.js";

type IPageRequest = iopf.link.v1.IPageRequest;

type IEndpoint = iopf.link.v1.IEndpoint;

export interface HostSession {
  epoch: number;
  agreement: Agreement;
  agentSoftware: string;
}

/** What the relay does with the link's events (the link only speaks the protocol). */
export interface HostLinkHandler {
  sessionUp(session: HostSession): void;
  /** The agent's answers, by index: tags[i] answered codes[i]. */
  pageResponses(epoch: number, responses: PageResponseColumns): void;
  /** The agent's new credit window, already clamped to the agreed max_in_flight. */
  credit(epoch: number, window: number): void;
  sessionDown(epoch: number, reason: string, cause: SessionEndCause): void;
  /**
   * The agent answered HELLO with an ERROR: it refused the offer. No session
   * came up; the link waits for the agent's next new SYNC. `reason` is the
   * agent's code and message, bounded and escaped.
   */
  refused(code: iopf.link.v1.ErrorCode, reason: string): void;
  /** The stream drained after a send returned false. */
  writable(): void;
  closed(err?: Error): void;
}

export interface HostLinkOptions {
  capabilities?: Capabilities;
  model: iopf.link.v1.ViommuModel;
  /** The Hello's endpoint table, or how to get it at each Hello (the device map changes at runtime). */
  endpoints: readonly IEndpoint[] | (() => readonly IEndpoint[]);
  software: string;
  /** Gives each session its epoch; epochs must not repeat within a relay's life. */
  nextEpoch: () => number;
  handshakeTimeoutMs?: number;
  resyncTimers?: ResyncTimers;
}

type State = "no-session" | "hello-sent" | "established";

/** An agent's software string as the relay keeps and shows it: a name and a version, not a document. */
const AGENT_SOFTWARE_CHARS = 64;

/** After close(), a peer that does not close its end within this long has the connection cut. */
const CLOSE_GRACE_MS = 1000;

export class HostLink extends LinkPeer {
  private state: State = "no-session";
  private helloId = 0;
  private epoch = 0;
  private session: HostSession | null = null;
  private handshakeTimer: NodeJS.Timeout | null = null;
  private readonly capabilities: Capabilities;
  /** Page request frames are encoded here, then copied out: one buffer for the link's life. */
  private readonly frames = new FrameWriter();

  constructor(
    stream: ByteStream,
    private readonly handler: HostLinkHandler,
    private readonly options: HostLinkOptions,
  ) {
    super(stream, "agent", options.resyncTimers ?? DEFAULT_RESYNC_TIMERS);
    this.capabilities = options.capabilities ?? OUR_CAPABILITIES;
    checkCapabilities("relay", this.capabilities);
  }

  get current(): HostSession | null {
    return this.session;
  }

  /**
   * Says goodbye, ends the session and closes the connection for good: the
   * write side once the goodbye is out, the whole socket when the peer has
   * not closed its side soon after (a peer that never does would keep the
   * fd for ever).
   */
  override close(reason: GoodbyeReason = pb.GoodbyeReason.GOODBYE_SHUTDOWN, message = "shutting down"): void {
    super.close(reason, message);
    const stream = this.channel.stream;
    const timer = setTimeout(() => stream.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    stream.on("close", () => clearTimeout(timer));
  }

  /**
   * Sends page requests, framed in batches within max_batch and
   * max_payload. `writable` false asks to wait for handler.writable();
   * `tooLarge` are requests that alone exceed max_payload (not sent).
   * The caller keeps within the credit window; the link does not queue.
   */
  sendPageRequests(requests: IPageRequest[]): BatchOutcome<IPageRequest> {
    const { limits } = this.requireSession("send page requests").agreement;
    const sizes = requests.map(pageRequestSize);
    const { writable, tooLarge } = this.sendPacked(requests.length, (i) => batchEntrySize(sizes[i]!), limits,
      (from, to, bytes) => encodePageRequestsFrame(this.frames, RequestCode.PAGE_REQUESTS, this.channel.newRequestId(), requests, sizes, from, to, bytes));
    return { writable, tooLarge: tooLarge.map((i) => requests[i]!) };
  }

  /** Tells the agent the host answered these tags itself (needs FEATURE_CANCELS). */
  sendCancels(tags: number[], reason: iopf.link.v1.CancelReason): boolean {
    const { limits } = this.requireSession("send cancels").agreement;
    return this.sendBatched(RequestCode.PAGE_CANCELS, pb.PageCancelBatch, tags, limits, (batch) => ({ tags: batch, reason })).writable;
  }

  protected sessionActive(): boolean {
    return this.state === "established" || this.state === "hello-sent";
  }

  protected onAligned(): void {
    this.sendHello();
  }

  protected onNewPeerSync(): void {
    this.endSession("agent sent a new SYNC: it restarted or lost alignment", "new-sync");
    if (this.channel.aligned) this.sendHello();
  }

  protected onSessionMessage(msg: Inbound): void {
    switch (msg.kind) {
      case "welcome":
        if (this.state === "hello-sent" && msg.id === this.helloId) this.onWelcome(msg.body);
        return;
      case "error-reply":
        if (msg.code === RequestCode.HELLO && msg.id === this.helloId && this.state === "hello-sent") {
          // The agent refused the offer: retrying the same offer cannot succeed,
          // so stay idle until the agent resyncs (a restart or a new config).
          this.idle();
          this.handler.refused(msg.body.code, `${linkErrorName(msg.body.code)}: ${peerText(msg.body.message, PEER_MESSAGE_CHARS)}`);
        }
        return;
      case "page-responses":
        this.onPageResponses(msg.body);
        return;
      case "credit": {
        const session = this.requireEstablished(msg.kind);
        if (!session) return;
        this.handler.credit(session.epoch, Math.min(msg.body.window, session.agreement.limits.maxInFlight));
        return;
      }
      case "hello":
      case "page-requests":
      case "page-cancels":
        this.fail(new LinkError(LinkErrorCode.UNEXPECTED_MESSAGE, `the agent sent ${msg.kind}, which only the relay may send`));
        return;
    }
  }

  protected endSession(reason: string, cause: SessionEndCause): void {
    const wasUp = this.session;
    this.idle();
    if (wasUp) this.handler.sessionDown(wasUp.epoch, reason, cause);
  }

  /** No session, none being negotiated. */
  private idle(): void {
    this.clearHandshakeTimer();
    this.session = null;
    this.liveness.stop();
    this.state = "no-session";
    // Until the next handshake agrees on one, the handshake's limit applies again.
    this.channel.setMaxPayload(HANDSHAKE_MAX_PAYLOAD);
  }

  protected onDrain(): void {
    this.handler.writable();
  }

  protected onClosed(err?: Error): void {
    this.clearHandshakeTimer();
    this.handler.closed(err);
  }

  private sendHello(): void {
    this.clearHandshakeTimer();
    this.epoch = this.options.nextEpoch();
    this.helloId = this.channel.newRequestId();
    this.state = "hello-sent";
    const caps = this.capabilities;
    this.channel.send(RequestCode.HELLO, Flag.NEED_REPLY, this.helloId, pb.Hello, {
      versionMin: caps.versionMin,
      versionMax: caps.versionMax,
      features: caps.features,
      limits: caps.limits,
      sessionEpoch: this.epoch,
      model: this.options.model,
      endpoints: [...(typeof this.options.endpoints === "function" ? this.options.endpoints() : this.options.endpoints)],
      software: this.options.software,
    });
    const timeoutMs = this.options.handshakeTimeoutMs ?? 5000;
    this.handshakeTimer = setTimeout(() => {
      this.fail(new LinkError(LinkErrorCode.HANDSHAKE_TIMEOUT, `no Welcome within ${timeoutMs} ms of HELLO ${this.helloId}`));
    }, timeoutMs);
    this.handshakeTimer.unref();
  }

  private onWelcome(welcome: WireWelcome): void {
    this.clearHandshakeTimer();
    if (welcome.sessionEpoch !== this.epoch) {
      this.fail(new LinkError(LinkErrorCode.NEGOTIATION_FAILED, `Welcome echoes session epoch ${welcome.sessionEpoch}, the Hello offered ${this.epoch}`));
      return;
    }
    let agreement: Agreement;
    try {
      agreement = checkAnswer(this.capabilities, { version: welcome.version, features: welcome.features, limits: welcome.limits });
    } catch (err) {
      this.fail(err as LinkError);
      return;
    }
    this.channel.setMaxPayload(agreement.limits.maxPayload);
    this.session = { epoch: this.epoch, agreement, agentSoftware: peerText(welcome.software, AGENT_SOFTWARE_CHARS) };
    this.state = "established";
    this.liveness.start(agreement.limits.heartbeatMs);
    this.handler.sessionUp(this.session);
  }

  private onPageResponses(responses: PageResponseColumns): void {
    const session = this.requireEstablished("page-responses");
    if (!session) return;
    if (responses.count > session.agreement.limits.maxBatch) {
      this.fail(new LinkError(LinkErrorCode.BATCH_TOO_LARGE, `${responses.count} page responses in one frame, max_batch is ${session.agreement.limits.maxBatch}`));
      return;
    }
    this.handler.pageResponses(session.epoch, responses);
  }

  private requireEstablished(what: string): HostSession | null {
    if (this.state === "established" && this.session) return this.session;
    this.fail(new LinkError(LinkErrorCode.UNEXPECTED_MESSAGE, `the agent sent ${what} before the handshake completed`));
    return null;
  }

  private requireSession(what: string): HostSession {
    if (!this.session) throw new Error(`cannot ${what}: no established session on ${this.description}; wait for sessionUp`);
    return this.session;
  }

  private clearHandshakeTimer(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
  }
}

