// Intel VT-d: the page request descriptor the IOMMU writes to the page
// request queue, and the page group response descriptor software submits to
// the invalidation queue. Both are 256-bit (4 x le64): page requests need
// scalable mode, whose descriptors are 256 bits (QEMU's vtd_pri_request_page
// relies on PRS implying scalable mode the same way).
//
// Page request descriptor, verified against Linux drivers/iommu/intel/prq.c
// `struct page_req_dsc` and QEMU hw/i386/intel_iommu_internal.h VTD_PRD_*:
//   qw0  [7:0] type = 1 (VTD_PRD_TYPE)   [8] PASID present (pasid_present, VTD_PRD_PP)
//        [31:16] requester id (rid)      [51:32] PASID (pasid)
//        [52] execute requested (exe_req) [53] privileged mode requested (pm_req)
//   qw1  [0] read (rd_req)  [1] write (wr_req)  [2] last page in group (lpig)
//        [11:3] page request group index (prg_index)  [63:12] page address (addr)
//   qw2, qw3  private data: zero, iommufd does not pass it to user space.
//
// Page group response descriptor, verified against Linux
// drivers/iommu/intel/iommu.h QI_PGRP_* and prq.c intel_iommu_page_response():
//   qw0  [3:0] type = 0x9 (QI_PGRP_RESP_TYPE; QI_TYPE_MASK is GENMASK(3, 0))
//        [4] PASID present (QI_PGRP_PASID_P)  [15:12] response code (QI_PGRP_RESP_CODE)
//        [31:16] requester id (QI_PGRP_DID)   [51:32] PASID (QI_PGRP_PASID)
//   qw1  [11:3] group index (QI_PGRP_IDX); LPIG at [2] is set by Linux 6.12
//        (QI_PGRP_LPIG) and not by later kernels: ignored on decode, clear on encode
//   qw2, qw3  zero.
//   Codes: QI_RESP_SUCCESS 0x0, QI_RESP_INVALID 0x1, QI_RESP_FAILURE 0xf.
import { iopf } from "../gen/guest_link.js";
import type { ViommuCodec } from "./codec.js";
import {
  bits, checkField, checkGroup, checkRecordSize, getBit, getBits, getPage, pageBits, Perm, PERM_MASK, wordAt, wordsToBytes,
  type FieldLimits, type GuestGroup, type GuestPage, type PageRequestRecord, type PageResponseRecord,
} from "./record.js";
import { linkToNative, nativeToLink, type CodeMapping, type NativeCodes, type ResponseCode } from "./response-code.js";

const NAME = "VT-d";
const DESCRIPTOR_SIZE = 32;
const PAGE_REQUEST_TYPE = 0x1;
const PAGE_GROUP_RESPONSE_TYPE = 0x9;

export const VTD_LIMITS: FieldLimits = { endpoint: 0xffff, pasid: 0xfffff, groupIndex: 0x1ff };
export const VTD_CODES: NativeCodes = { success: 0x0, invalid: 0x1, failure: 0xf };

export function encodePageRequest(group: GuestGroup, page: GuestPage, isLast: boolean): Uint8Array {
  checkGroup(NAME, group, VTD_LIMITS);
  checkField(NAME, "perm", page.perm, PERM_MASK);
  const qw0 = bits(PAGE_REQUEST_TYPE, 0) | bits(group.pasidValid, 8) | bits(group.endpoint, 16) | bits(group.pasid, 32)
    | bits((page.perm & Perm.EXEC) !== 0, 52) | bits((page.perm & Perm.PRIV) !== 0, 53);
  const qw1 = bits((page.perm & Perm.READ) !== 0, 0) | bits((page.perm & Perm.WRITE) !== 0, 1) | bits(isLast, 2)
    | bits(group.groupIndex, 3) | pageBits(NAME, page.address);
  return wordsToBytes([qw0, qw1, 0n, 0n]);
}

export function decodePageRequest(bytes: Uint8Array): PageRequestRecord {
  const view = checkRecordSize(NAME, "page request descriptor", bytes, DESCRIPTOR_SIZE);
  const qw0 = wordAt(view, 0);
  const qw1 = wordAt(view, 1);
  const type = getBits(qw0, 0, 8);
  if (type !== PAGE_REQUEST_TYPE) {
    throw new RangeError(`${NAME} page request descriptor: expected type ${PAGE_REQUEST_TYPE} in qw0[7:0], got ${type}`);
  }
  return {
    endpoint: getBits(qw0, 16, 16),
    pasid: getBits(qw0, 32, 20),
    pasidValid: getBit(qw0, 8),
    groupIndex: getBits(qw1, 3, 9),
    address: getPage(qw1),
    perm: (getBit(qw1, 0) ? Perm.READ : 0) | (getBit(qw1, 1) ? Perm.WRITE : 0)
      | (getBit(qw0, 52) ? Perm.EXEC : 0) | (getBit(qw0, 53) ? Perm.PRIV : 0),
    last: getBit(qw1, 2),
  };
}

export function encodePageResponse(group: GuestGroup, code: ResponseCode): Uint8Array {
  checkGroup(NAME, group, VTD_LIMITS);
  const native = linkToNative(NAME, VTD_CODES, code);
  const qw0 = bits(PAGE_GROUP_RESPONSE_TYPE, 0) | bits(group.pasidValid, 4) | bits(native, 12)
    | bits(group.endpoint, 16) | bits(group.pasid, 32);
  return wordsToBytes([qw0, bits(group.groupIndex, 3), 0n, 0n]);
}

export function decodePageResponse(bytes: Uint8Array): PageResponseRecord {
  const view = checkRecordSize(NAME, "page group response descriptor", bytes, DESCRIPTOR_SIZE);
  const qw0 = wordAt(view, 0);
  const type = getBits(qw0, 0, 4);
  if (type !== PAGE_GROUP_RESPONSE_TYPE) {
    throw new RangeError(`${NAME} page group response descriptor: expected type ${PAGE_GROUP_RESPONSE_TYPE} in qw0[3:0], got ${type}`);
  }
  return {
    endpoint: getBits(qw0, 16, 16),
    pasid: getBits(qw0, 32, 20),
    pasidValid: getBit(qw0, 4),
    groupIndex: getBits(wordAt(view, 1), 3, 9),
    nativeCode: getBits(qw0, 12, 4),
  };
}

export function toLinkCode(nativeCode: number): CodeMapping<ResponseCode> {
  return nativeToLink(VTD_CODES, nativeCode);
}

export const vtdCodec: ViommuCodec = {
  model: iopf.link.v1.ViommuModel.INTEL_VTD,
  name: NAME,
  requestSize: DESCRIPTOR_SIZE,
  responseSize: DESCRIPTOR_SIZE,
  limits: VTD_LIMITS,
  codes: VTD_CODES,
  encodePageRequest,
  decodePageRequest,
  encodePageResponse,
  decodePageResponse,
  toLinkCode,
};
