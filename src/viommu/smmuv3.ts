// Arm SMMUv3: the PRI queue entry the SMMU writes for a PCIe page request,
// and the CMD_PRI_RESP command software issues to answer its group. Both are
// 16 bytes (2 x le64). Verified against Linux
// drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.h:
//
// PRI queue entry (PRIQ_ENT_SZ_SHIFT 4):
//   dw0  [31:0] StreamID (PRIQ_0_SID)   [51:32] SubstreamID (PRIQ_0_SSID)
//        [58] privileged (PRIQ_0_PERM_PRIV)  [59] exec (PRIQ_0_PERM_EXEC)
//        [60] read (PRIQ_0_PERM_READ)  [61] write (PRIQ_0_PERM_WRITE)
//        [62] last in group (PRIQ_0_PRG_LAST)  [63] SubstreamID valid (PRIQ_0_SSID_V)
//   dw1  [8:0] group index (PRIQ_1_PRG_IDX)  [63:12] page address (PRIQ_1_ADDR_MASK)
//
// CMD_PRI_RESP (CMDQ_OP_PRI_RESP 0x41):
//   dw0  [7:0] opcode (CMDQ_0_OP)  [11] SubstreamID valid (CMDQ_0_SSV)
//        [31:12] SubstreamID (CMDQ_PRI_0_SSID)  [63:32] StreamID (CMDQ_PRI_0_SID)
//   dw1  [8:0] group index (CMDQ_PRI_1_GRPID)  [13:12] response (CMDQ_PRI_1_RESP)
//   Responses (enum pri_resp): PRI_RESP_DENY 0 (PCIe Invalid Request),
//   PRI_RESP_FAIL 1 (PCIe Response Failure), PRI_RESP_SUCC 2.
import { iopf } from "../gen/guest_link.js";
import type { ViommuCodec } from "./codec.js";
import {
  bits, checkField, checkGroup, checkRecordSize, getBit, getBits, getPage, pageBits, Perm, PERM_MASK, wordAt, wordsToBytes,
  type FieldLimits, type GuestGroup, type GuestPage, type PageRequestRecord, type PageResponseRecord,
} from "./record.js";
import { linkToNative, nativeToLink, type CodeMapping, type NativeCodes, type ResponseCode } from "./response-code.js";

const NAME = "SMMUv3";
const ENTRY_SIZE = 16;
const CMDQ_OP_PRI_RESP = 0x41;

export const SMMUV3_LIMITS: FieldLimits = { endpoint: 0xffff_ffff, pasid: 0xfffff, groupIndex: 0x1ff };
export const SMMUV3_CODES: NativeCodes = { success: 2, invalid: 0, failure: 1 };

export function encodePageRequest(group: GuestGroup, page: GuestPage, isLast: boolean): Uint8Array {
  checkGroup(NAME, group, SMMUV3_LIMITS);
  checkField(NAME, "perm", page.perm, PERM_MASK);
  const dw0 = bits(group.endpoint, 0) | bits(group.pasid, 32)
    | bits((page.perm & Perm.PRIV) !== 0, 58) | bits((page.perm & Perm.EXEC) !== 0, 59)
    | bits((page.perm & Perm.READ) !== 0, 60) | bits((page.perm & Perm.WRITE) !== 0, 61)
    | bits(isLast, 62) | bits(group.pasidValid, 63);
  const dw1 = bits(group.groupIndex, 0) | pageBits(NAME, page.address);
  return wordsToBytes([dw0, dw1]);
}

/** A PRI queue entry has no type field: any 16 bytes decode. */
export function decodePageRequest(bytes: Uint8Array): PageRequestRecord {
  const view = checkRecordSize(NAME, "PRI queue entry", bytes, ENTRY_SIZE);
  const dw0 = wordAt(view, 0);
  const dw1 = wordAt(view, 1);
  return {
    endpoint: getBits(dw0, 0, 32),
    pasid: getBits(dw0, 32, 20),
    pasidValid: getBit(dw0, 63),
    groupIndex: getBits(dw1, 0, 9),
    address: getPage(dw1),
    perm: (getBit(dw0, 60) ? Perm.READ : 0) | (getBit(dw0, 61) ? Perm.WRITE : 0)
      | (getBit(dw0, 59) ? Perm.EXEC : 0) | (getBit(dw0, 58) ? Perm.PRIV : 0),
    last: getBit(dw0, 62),
  };
}

export function encodePageResponse(group: GuestGroup, code: ResponseCode): Uint8Array {
  checkGroup(NAME, group, SMMUV3_LIMITS);
  const native = linkToNative(NAME, SMMUV3_CODES, code);
  const dw0 = bits(CMDQ_OP_PRI_RESP, 0) | bits(group.pasidValid, 11) | bits(group.pasid, 12) | bits(group.endpoint, 32);
  return wordsToBytes([dw0, bits(group.groupIndex, 0) | bits(native, 12)]);
}

export function decodePageResponse(bytes: Uint8Array): PageResponseRecord {
  const view = checkRecordSize(NAME, "CMD_PRI_RESP", bytes, ENTRY_SIZE);
  const dw0 = wordAt(view, 0);
  const dw1 = wordAt(view, 1);
  const opcode = getBits(dw0, 0, 8);
  if (opcode !== CMDQ_OP_PRI_RESP) {
    throw new RangeError(`${NAME} CMD_PRI_RESP: expected opcode 0x41 in dw0[7:0], got 0x${opcode.toString(16)}`);
  }
  return {
    endpoint: getBits(dw0, 32, 32),
    pasid: getBits(dw0, 12, 20),
    pasidValid: getBit(dw0, 11),
    groupIndex: getBits(dw1, 0, 9),
    nativeCode: getBits(dw1, 12, 2),
  };
}

export function toLinkCode(nativeCode: number): CodeMapping<ResponseCode> {
  return nativeToLink(SMMUV3_CODES, nativeCode);
}

export const smmuv3Codec: ViommuCodec = {
  model: iopf.link.v1.ViommuModel.ARM_SMMUV3,
  name: NAME,
  requestSize: ENTRY_SIZE,
  responseSize: ENTRY_SIZE,
  limits: SMMUV3_LIMITS,
  codes: SMMUV3_CODES,
  encodePageRequest,
  decodePageRequest,
  encodePageResponse,
  decodePageResponse,
  toLinkCode,
};
