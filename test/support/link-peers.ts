// A host link and a guest link wired to recorders, for session tests: the
// guest answers every request at once with a fixed code (a dummy backend).
import { GuestLink, GuestSession } from "../../src/link/guest-link.js";
import { HostLink, HostSession } from "../../src/link/host-link.js";
import { pb, WirePageRequest, WirePageResponse } from "../../src/link/messages.js";
import { Capabilities } from "../../src/link/negotiation.js";
import type { ByteStream } from "../../src/link/transport/byte-stream.js";
import { memoryPair } from "./memory-stream.js";

export const FAST_TIMERS = { syncRetryMinMs: 5, syncRetryMaxMs: 40 };

export interface HostRecord {
  link: HostLink;
  ups: HostSession[];
  downs: string[];
  /** The reasons of the agent's refusals of the offer. */
  refusals: string[];
  responses: WirePageResponse[];
  credits: number[];
  closed: boolean;
}

let epoch = 1000;

export function makeHost(stream: ByteStream, capabilities?: Capabilities): HostRecord {
  const rec: HostRecord = { ups: [], downs: [], refusals: [], responses: [], credits: [], closed: false } as unknown as HostRecord;
  rec.link = new HostLink(
    stream,
    {
      sessionUp: (s) => rec.ups.push(s),
      pageResponses: (_e, r) => rec.responses.push(...r.responses),
      credit: (_e, w) => rec.credits.push(w),
      sessionDown: (_e, reason) => rec.downs.push(reason),
      refused: (_code, reason) => rec.refusals.push(reason),
      writable: () => undefined,
      closed: () => {
        rec.closed = true;
      },
    },
    {
      ...(capabilities ? { capabilities } : {}),
      model: pb.ViommuModel.VIRTIO_IOMMU,
      endpoints: [{ endpointId: 8, name: "nic0", deadlineMs: 100, pasidCapable: true }],
      software: "test-host",
      nextEpoch: () => ++epoch,
      resyncTimers: FAST_TIMERS,
      handshakeTimeoutMs: 500,
    },
  );
  return rec;
}

export interface GuestRecord {
  link: GuestLink;
  ups: GuestSession[];
  downs: string[];
  refused: string[];
  requests: WirePageRequest[];
  cancels: number[];
  /** When set, each request is answered at once with this code. */
  answer: number | null;
}

export function makeGuest(stream: ByteStream, capabilities?: Capabilities): GuestRecord {
  const rec = { ups: [], downs: [], refused: [], requests: [], cancels: [], answer: pb.ResponseCode.RESPONSE_SUCCESS } as unknown as GuestRecord;
  rec.link = new GuestLink(
    stream,
    {
      sessionUp: (s) => rec.ups.push(s),
      pageRequests: (reqs) => {
        rec.requests.push(...reqs.requests);
        if (rec.answer !== null) rec.link.sendResponses(reqs.requests.map((r) => r.tag), reqs.requests.map(() => rec.answer as number));
      },
      cancels: (tags) => rec.cancels.push(...tags),
      sessionDown: (reason) => rec.downs.push(reason),
      handshakeRefused: (reason) => rec.refused.push(reason),
      closed: () => undefined,
    },
    { ...(capabilities ? { capabilities } : {}), software: "test-guest", resyncTimers: FAST_TIMERS },
  );
  return rec;
}

/** A host and a guest link on an in-memory pair, both started. */
export function startPair(hostCaps?: Capabilities, guestCaps?: Capabilities) {
  const [h, g] = memoryPair();
  const host = makeHost(h, hostCaps);
  const guest = makeGuest(g, guestCaps);
  host.link.start();
  guest.link.start();
  return { h, g, host, guest };
}
