// Every page request and page response layout, bit by bit. The bit positions
// below are written from the sources (Linux prq.c struct page_req_dsc and
// iommu.h QI_PGRP_*, arm-smmu-v3.h PRIQ_* and CMDQ_PRI_*, the virtio-iommu
// spec and 2021 proposal), not from src/viommu: each test sets one field,
// alone, to its largest value and to a distinctive one, and checks exactly
// which bits of the record changed. Bit n of a record is bit n%8 of byte n/8.
import test from "ava";
import fc from "fast-check";
import { deepStrictEqual } from "node:assert";
import type { ViommuCodec } from "../../src/viommu/codec.js";
import type { GuestGroup, GuestPage } from "../../src/viommu/record.js";
import { ResponseCode } from "../../src/viommu/response-code.js";
import { smmuv3Codec } from "../../src/viommu/smmuv3.js";
import { virtioIommuCodec } from "../../src/viommu/virtio-iommu.js";
import { vtdCodec } from "../../src/viommu/vtd.js";

interface RequestInput {
  group: GuestGroup;
  page: GuestPage;
  last: boolean;
}

/** One field of a record: where it lives, and how to set it in the input. */
interface Field<I> {
  name: string;
  lo: number;
  width: number;
  /** Largest value the encoder accepts (below 2^width when the record's field is wider than the value). */
  max?: number;
  set(input: I, value: number): I;
}

const ZERO_REQUEST: RequestInput = {
  group: { endpoint: 0, pasid: 0, pasidValid: false, groupIndex: 0 },
  page: { address: 0, perm: 0 },
  last: false,
};
const ZERO_GROUP: GuestGroup = ZERO_REQUEST.group;

const group = <I extends { group: GuestGroup }>(key: keyof GuestGroup) =>
  (input: I, value: number): I => ({ ...input, group: { ...input.group, [key]: key === "pasidValid" ? value === 1 : value } });
const reqEndpoint = group<RequestInput>("endpoint");
const reqPasid = group<RequestInput>("pasid");
const reqPasidValid = group<RequestInput>("pasidValid");
const reqGroupIndex = group<RequestInput>("groupIndex");
const perm = (bit: number) => (input: RequestInput, value: number): RequestInput => ({ ...input, page: { ...input.page, perm: value ? bit : 0 } });
/** value is the page number: address bits [63:12]. */
const page = (input: RequestInput, value: number): RequestInput => ({ ...input, page: { ...input.page, address: Number(BigInt(value) << 12n) } });
const last = (input: RequestInput, value: number): RequestInput => ({ ...input, last: value === 1 });

interface ResponseInput {
  group: GuestGroup;
}
const respEndpoint = group<ResponseInput>("endpoint");
const respPasid = group<ResponseInput>("pasid");
const respPasidValid = group<ResponseInput>("pasidValid");
const respGroupIndex = group<ResponseInput>("groupIndex");

interface Layout {
  codec: ViommuCodec;
  /** The record of the all-zero input, as a little-endian integer: the bits every record has. */
  requestConstant: bigint;
  request: Field<RequestInput>[];
  /** The response to the all-zero group with SUCCESS. */
  responseConstant: bigint;
  response: Field<ResponseInput>[];
  /** Where the native answer code lives, and the native value of each link code. */
  code: { lo: number; width: number; native: Record<ResponseCode, number> };
}

const layouts: Layout[] = [
  {
    // struct page_req_dsc (drivers/iommu/intel/prq.c); type 1 is QEMU's VTD_PRD_TYPE.
    codec: vtdCodec,
    requestConstant: 0x1n,
    request: [
      { name: "pasid_present", lo: 8, width: 1, set: reqPasidValid },
      { name: "rid", lo: 16, width: 16, set: reqEndpoint },
      { name: "pasid", lo: 32, width: 20, set: reqPasid },
      { name: "exe_req", lo: 52, width: 1, set: perm(4) },
      { name: "pm_req", lo: 53, width: 1, set: perm(8) },
      { name: "rd_req", lo: 64, width: 1, set: perm(1) },
      { name: "wr_req", lo: 65, width: 1, set: perm(2) },
      { name: "lpig", lo: 66, width: 1, set: last },
      { name: "prg_index", lo: 67, width: 9, set: reqGroupIndex },
      { name: "addr", lo: 76, width: 52, set: page },
    ],
    // QI_PGRP_RESP_TYPE 0x9 at qw0[3:0], QI_RESP_SUCCESS 0.
    responseConstant: 0x9n,
    response: [
      { name: "QI_PGRP_PASID_P", lo: 4, width: 1, set: respPasidValid },
      { name: "QI_PGRP_DID", lo: 16, width: 16, set: respEndpoint },
      { name: "QI_PGRP_PASID", lo: 32, width: 20, set: respPasid },
      { name: "QI_PGRP_IDX", lo: 64 + 3, width: 9, set: respGroupIndex },
    ],
    code: { lo: 12, width: 4, native: { [ResponseCode.RESPONSE_SUCCESS]: 0x0, [ResponseCode.RESPONSE_INVALID]: 0x1, [ResponseCode.RESPONSE_FAILURE]: 0xf } },
  },
  {
    // PRIQ_0_* / PRIQ_1_* (arm-smmu-v3.h): no type field, the zero input is an all-zero entry.
    codec: smmuv3Codec,
    requestConstant: 0n,
    request: [
      { name: "PRIQ_0_SID", lo: 0, width: 32, set: reqEndpoint },
      { name: "PRIQ_0_SSID", lo: 32, width: 20, set: reqPasid },
      { name: "PRIQ_0_PERM_PRIV", lo: 58, width: 1, set: perm(8) },
      { name: "PRIQ_0_PERM_EXEC", lo: 59, width: 1, set: perm(4) },
      { name: "PRIQ_0_PERM_READ", lo: 60, width: 1, set: perm(1) },
      { name: "PRIQ_0_PERM_WRITE", lo: 61, width: 1, set: perm(2) },
      { name: "PRIQ_0_PRG_LAST", lo: 62, width: 1, set: last },
      { name: "PRIQ_0_SSID_V", lo: 63, width: 1, set: reqPasidValid },
      { name: "PRIQ_1_PRG_IDX", lo: 64, width: 9, set: reqGroupIndex },
      { name: "PRIQ_1_ADDR_MASK", lo: 76, width: 52, set: page },
    ],
    // CMDQ_OP_PRI_RESP 0x41 at dw0[7:0]; PRI_RESP_SUCC 2 at dw1[13:12].
    responseConstant: 0x41n | (2n << 76n),
    response: [
      { name: "CMDQ_0_SSV", lo: 11, width: 1, set: respPasidValid },
      { name: "CMDQ_PRI_0_SSID", lo: 12, width: 20, set: respPasid },
      { name: "CMDQ_PRI_0_SID", lo: 32, width: 32, set: respEndpoint },
      { name: "CMDQ_PRI_1_GRPID", lo: 64, width: 9, set: respGroupIndex },
    ],
    code: { lo: 76, width: 2, native: { [ResponseCode.RESPONSE_SUCCESS]: 2, [ResponseCode.RESPONSE_INVALID]: 0, [ResponseCode.RESPONSE_FAILURE]: 1 } },
  },
  {
    // struct virtio_iommu_fault extended to 48 bytes (Brucker, 2021): reason MAPPING (2) at byte 0;
    // flags at byte 4 always hold PAGE_REQ 1<<5, ADDRESS 1<<8, GROUP_ID 1<<10.
    codec: virtioIommuCodec,
    requestConstant: 0x2n | (0x520n << 32n),
    request: [
      { name: "flags READ", lo: 32 + 0, width: 1, set: perm(1) },
      { name: "flags WRITE", lo: 32 + 1, width: 1, set: perm(2) },
      { name: "flags EXEC", lo: 32 + 2, width: 1, set: perm(4) },
      { name: "flags PRIVILEGED", lo: 32 + 3, width: 1, set: perm(8) },
      { name: "flags LAST", lo: 32 + 4, width: 1, set: last },
      { name: "flags PASID", lo: 32 + 9, width: 1, set: reqPasidValid },
      { name: "endpoint", lo: 8 * 8, width: 32, set: reqEndpoint },
      { name: "pasid", lo: 12 * 8, width: 32, set: reqPasid },
      { name: "address", lo: 16 * 8 + 12, width: 52, set: page },
      { name: "group_id", lo: 24 * 8, width: 16, set: reqGroupIndex },
    ],
    // VIRTIO_IOMMU_T_PAGE_RESP 0x08 at byte 0; resp_code SUCCESS 0.
    responseConstant: 0x08n,
    response: [
      { name: "endpoint", lo: 4 * 8, width: 32, set: respEndpoint },
      { name: "flags PASID_VALID", lo: 8 * 8, width: 1, set: respPasidValid },
      { name: "pasid", lo: 12 * 8, width: 32, set: respPasid },
      { name: "grpid", lo: 16 * 8, width: 32, max: 0xffff, set: respGroupIndex },
    ],
    code: { lo: 20 * 8, width: 16, native: { [ResponseCode.RESPONSE_SUCCESS]: 0, [ResponseCode.RESPONSE_INVALID]: 1, [ResponseCode.RESPONSE_FAILURE]: 2 } },
  },
];

function asInteger(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i] as number);
  return n;
}

function changedBits(a: bigint, b: bigint): number[] {
  const bits: number[] = [];
  for (let diff = a ^ b, i = 0; diff !== 0n; diff >>= 1n, i++) if (diff & 1n) bits.push(i);
  return bits;
}

const range = (lo: number, width: number): number[] => Array.from({ length: width }, (_, i) => lo + i);
/** A value that is neither all ones nor symmetric, so a swapped or shifted field shows. */
const distinctive = (width: number): number => Number((0xa5c3_96e1_7b2dn & ((1n << BigInt(Math.min(width, 48))) - 1n)) | 1n);

const encodeRequest = (codec: ViommuCodec, x: RequestInput): bigint => asInteger(codec.encodePageRequest(x.group, x.page, x.last));
const encodeResponse = (codec: ViommuCodec, x: ResponseInput, code: ResponseCode = ResponseCode.RESPONSE_SUCCESS): bigint =>
  asInteger(codec.encodePageResponse(x.group, code));

for (const layout of layouts) {
  const { codec } = layout;

  test(`${codec.name}: the all-zero page request is exactly the record's constant bits, ${codec.requestSize} bytes`, (t) => {
    const bytes = codec.encodePageRequest(ZERO_REQUEST.group, ZERO_REQUEST.page, false);
    t.is(bytes.length, codec.requestSize);
    t.is(asInteger(bytes), layout.requestConstant);
  });

  for (const field of layout.request) {
    test(`${codec.name} page request: ${field.name} occupies bits ${field.lo}..${field.lo + field.width - 1} and nothing else`, (t) => {
      const max = field.max ?? Number((1n << BigInt(field.width)) - 1n);
      t.deepEqual(changedBits(layout.requestConstant, encodeRequest(codec, field.set(ZERO_REQUEST, max))), range(field.lo, field.width));
      const v = distinctive(field.width);
      t.is(encodeRequest(codec, field.set(ZERO_REQUEST, v)), layout.requestConstant | (BigInt(v) << BigInt(field.lo)));
    });
  }

  test(`${codec.name}: the page response to the all-zero group is exactly its constant bits, ${codec.responseSize} bytes`, (t) => {
    const bytes = codec.encodePageResponse(ZERO_GROUP, ResponseCode.RESPONSE_SUCCESS);
    t.is(bytes.length, codec.responseSize);
    t.is(asInteger(bytes), layout.responseConstant);
  });

  for (const field of layout.response) {
    test(`${codec.name} page response: ${field.name} occupies bits ${field.lo}..${field.lo + field.width - 1} and nothing else`, (t) => {
      const max = field.max ?? Number((1n << BigInt(field.width)) - 1n);
      const maxBits = Math.ceil(Math.log2(max + 1));
      t.deepEqual(changedBits(layout.responseConstant, encodeResponse(codec, field.set({ group: ZERO_GROUP }, max))), range(field.lo, maxBits));
      const v = distinctive(Math.min(field.width, maxBits));
      t.is(encodeResponse(codec, field.set({ group: ZERO_GROUP }, v)), layout.responseConstant | (BigInt(v) << BigInt(field.lo)));
    });
  }

  test(`${codec.name} page response: the answer code sits at bits ${layout.code.lo}..${layout.code.lo + layout.code.width - 1} with the model's value`, (t) => {
    const codeMask = ((1n << BigInt(layout.code.width)) - 1n) << BigInt(layout.code.lo);
    for (const code of [ResponseCode.RESPONSE_SUCCESS, ResponseCode.RESPONSE_INVALID, ResponseCode.RESPONSE_FAILURE]) {
      const record = encodeResponse(codec, { group: ZERO_GROUP }, code);
      t.is(record & ~codeMask, layout.responseConstant & ~codeMask, `code ${code} changes only the code field`);
      t.is(Number((record & codeMask) >> BigInt(layout.code.lo)), layout.code.native[code]);
    }
  });

  const groupArb = fc.record({
    endpoint: fc.nat({ max: codec.limits.endpoint }),
    pasid: fc.nat({ max: codec.limits.pasid }),
    pasidValid: fc.boolean(),
    groupIndex: fc.nat({ max: codec.limits.groupIndex }),
  });
  // Every 4 KiB-aligned u64, including the top address bits; exact as a JS number.
  const addressArb = fc.bigInt({ min: 0n, max: (1n << 52n) - 1n }).map((p) => Number(p << 12n));

  test(`${codec.name}: decode(encode(page request)) is the input, over the full field ranges`, (t) => {
    fc.assert(
      fc.property(groupArb, addressArb, fc.nat({ max: 15 }), fc.boolean(), (g, address, permBits, isLast) => {
        deepStrictEqual(codec.decodePageRequest(codec.encodePageRequest(g, { address, perm: permBits }, isLast)), { ...g, address, perm: permBits, last: isLast });
      }),
      { numRuns: 1000, examples: [[{ endpoint: codec.limits.endpoint, pasid: codec.limits.pasid, pasidValid: true, groupIndex: codec.limits.groupIndex }, 2 ** 64 - 4096, 15, true]] },
    );
    t.pass();
  });

  test(`${codec.name}: decode(encode(page response)) is the input with the model's code, which maps back to the link code`, (t) => {
    const codeArb = fc.constantFrom(ResponseCode.RESPONSE_SUCCESS, ResponseCode.RESPONSE_INVALID, ResponseCode.RESPONSE_FAILURE);
    fc.assert(
      fc.property(groupArb, codeArb, (g, code) => {
        const decoded = codec.decodePageResponse(codec.encodePageResponse(g, code));
        deepStrictEqual(decoded, { ...g, nativeCode: layout.code.native[code] });
        deepStrictEqual(codec.toLinkCode(decoded.nativeCode), { code, unknown: false });
      }),
      { numRuns: 500 },
    );
    t.pass();
  });

  test(`${codec.name}: the address is masked to its page`, (t) => {
    const decoded = codec.decodePageRequest(codec.encodePageRequest(ZERO_GROUP, { address: 0x1234_5fff, perm: 0 }, false));
    t.is(decoded.address, 0x1234_5000);
  });

  test(`${codec.name}: a field beyond the record's width is refused, naming the field and the range`, (t) => {
    const over = { ...ZERO_GROUP, groupIndex: codec.limits.groupIndex + 1 };
    t.throws(() => codec.encodePageRequest(over, ZERO_REQUEST.page, false), { instanceOf: RangeError, message: new RegExp(`group index must be an integer 0\\.\\.${codec.limits.groupIndex} .*got ${over.groupIndex}`) });
    t.throws(() => codec.encodePageRequest(ZERO_GROUP, { address: 2 ** 64, perm: 0 }, false), { instanceOf: RangeError, message: /address must be an integer 0\.\.2\^64-1/ });
    t.throws(() => codec.encodePageRequest(ZERO_GROUP, { address: 0, perm: 16 }, false), { instanceOf: RangeError, message: /perm must be an integer 0\.\.15/ });
    t.throws(() => codec.encodePageResponse(ZERO_GROUP, 7 as ResponseCode), { instanceOf: RangeError, message: /code must be a ResponseCode .* got 7/ });
  });

  test(`${codec.name}: records of the wrong size are refused with both sizes`, (t) => {
    t.throws(() => codec.decodePageRequest(new Uint8Array(codec.requestSize - 1)), { message: new RegExp(`expected ${codec.requestSize} bytes, got ${codec.requestSize - 1}`) });
    t.throws(() => codec.decodePageResponse(new Uint8Array(codec.responseSize + 8)), { message: new RegExp(`expected ${codec.responseSize} bytes, got ${codec.responseSize + 8}`) });
  });
}

test("records of another kind are refused: VT-d type, SMMUv3 opcode, virtio-iommu request type and PAGE_REQ flag", (t) => {
  t.throws(() => vtdCodec.decodePageRequest(new Uint8Array(32)), { message: /expected type 1 in qw0\[7:0\], got 0/ });
  t.throws(() => vtdCodec.decodePageResponse(new Uint8Array(32)), { message: /expected type 9 in qw0\[3:0\], got 0/ });
  t.throws(() => smmuv3Codec.decodePageResponse(new Uint8Array(16)), { message: /expected opcode 0x41 in dw0\[7:0\], got 0x0/ });
  t.throws(() => virtioIommuCodec.decodePageResponse(new Uint8Array(32)), { message: /expected type 0x08 at byte 0, got 0x0/ });
  const unrecoverable = new Uint8Array(48);
  unrecoverable[4] = 0x01; // READ only: a spec fault record, not a page request
  unrecoverable[5] = 0x01; // ADDRESS
  t.throws(() => virtioIommuCodec.decodePageRequest(unrecoverable), { message: /expected a page request with flags PAGE_REQ, ADDRESS and GROUP_ID \(0x520\), got flags 0x101/ });
});

test("virtio-iommu keeps the spec's 24-byte record where a spec-only driver reads it", (t) => {
  const bytes = virtioIommuCodec.encodePageRequest({ endpoint: 0x01020304, pasid: 5, pasidValid: true, groupIndex: 6 }, { address: 0xabcd_e000, perm: 3 }, true);
  const view = new DataView(bytes.buffer);
  t.is(view.getUint8(0), 2, "reason MAPPING");
  t.is(view.getUint32(4, true) & 0x107, 0x103, "flags READ | WRITE | ADDRESS");
  t.is(view.getUint32(8, true), 0x01020304, "endpoint");
  t.is(view.getBigUint64(16, true), 0xabcd_e000n, "address");
  t.deepEqual([...bytes.subarray(26)], new Array(22).fill(0), "reserved and private data are zero");
});

test("vtd: a page group response with LPIG set (as Linux 6.12 writes it) decodes like one without", (t) => {
  const group = { endpoint: 0x0318, pasid: 0x12345, pasidValid: true, groupIndex: 0x1a5 };
  const plain = vtdCodec.encodePageResponse(group, ResponseCode.RESPONSE_SUCCESS);
  const withLpig = Uint8Array.from(plain);
  withLpig[8]! |= 1 << 2;
  t.deepEqual(vtdCodec.decodePageResponse(withLpig), vtdCodec.decodePageResponse(plain));
});
