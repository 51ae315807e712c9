// Turns one fault group read from the host (the records of one cookie) into
// the page request the guest receives. The guest is untrusted: the output is
// built field by field from the device map's guest identifiers, never by
// copying a host object, so no host dev_id, host PASID or cookie can reach it.
import type { WirePage, WirePageRequest } from "../link/messages.js";
import type { ViommuCodec } from "./codec.js";
import type { GuestTarget } from "./device-map.js";
import { isU64, pageAddress, PERM_MASK, type GuestGroup } from "./record.js";

/**
 * What the builder reads of a host fault group: the fields every record of
 * the group shares, and each record's page (struct iommu_hwpt_pgfault:
 * dev_id, pasid if IOMMU_PGFAULT_FLAGS_PASID_VALID, grpid; per record perm
 * and addr). The fault layer's group type fits it; its cookie is never read.
 */
export interface HostGroup {
  readonly devId: number;
  readonly pasid: number;
  readonly pasidValid: boolean;
  readonly grpid: number;
  /** In record order: the last one carried IOMMU_PGFAULT_FLAGS_LAST_PAGE. perm: READ 1<<0, WRITE 1<<1, EXEC 1<<2, PRIV 1<<3. */
  readonly pages: readonly { readonly addr: number; readonly perm: number }[];
}

export interface BuildOptions {
  /** The relay's tag for this group, by which the guest answers. */
  tag: number;
  /** Microseconds left before the relay answers by deadline. */
  budgetUs: number;
  /** FEATURE_RAW_RECORDS was negotiated: every page carries the model's record. */
  rawRecords: boolean;
}

const NO_RAW = new Uint8Array(0);

/**
 * Why this group cannot be shown to this guest, or null when it can. A group
 * that does not fit is answered INVALID by the relay: for example a 16-bit
 * stall tag where PRI records hold a 9-bit group index.
 */
export function whyUnfit(group: HostGroup, target: GuestTarget, codec: ViommuCodec): string | null {
  if (group.devId !== target.device.devId) return `the group is not of device "${target.device.name}"`;
  if (group.pages.length === 0) return "the group has no pages";
  const { limits, name } = codec;
  if (target.device.endpoint > limits.endpoint) return `endpoint ${target.device.endpoint} is beyond ${name}'s ${limits.endpoint}`;
  if (target.pasid > limits.pasid) return `guest PASID ${target.pasid} is beyond ${name}'s ${limits.pasid}`;
  if (!Number.isInteger(group.grpid) || group.grpid < 0 || group.grpid > limits.groupIndex) {
    return `group index ${group.grpid} is beyond ${name}'s ${limits.groupIndex}`;
  }
  const bad = group.pages.find((page) => !isU64(page.addr));
  return bad === undefined ? null : `fault address ${bad.addr} is not an integer 0..2^64-1`;
}

/** The guest's page request for a group. Throws RangeError when whyUnfit() would have said why not. */
export function buildPageRequest(group: HostGroup, target: GuestTarget, codec: ViommuCodec, options: BuildOptions): WirePageRequest {
  const unfit = whyUnfit(group, target, codec);
  if (unfit !== null) throw new RangeError(`page request for ${codec.name}: ${unfit}; check with whyUnfit() first`);
  const guest: GuestGroup = {
    endpoint: target.device.endpoint,
    pasid: target.pasid,
    pasidValid: target.pasidValid,
    groupIndex: group.grpid,
  };
  const hostPages = group.pages;
  const lastIndex = hostPages.length - 1;
  const pages = new Array<WirePage>(hostPages.length);
  for (let i = 0; i <= lastIndex; i++) {
    const address = pageAddress(hostPages[i]!.addr);
    const perm = hostPages[i]!.perm & PERM_MASK;
    pages[i] = { address, perm, raw: options.rawRecords ? codec.encodePageRequest(guest, { address, perm }, i === lastIndex) : NO_RAW };
  }
  return {
    tag: options.tag,
    endpoint: guest.endpoint,
    pasid: guest.pasid,
    pasidValid: guest.pasidValid,
    groupIndex: guest.groupIndex,
    pages,
    budgetUs: options.budgetUs,
  };
}
