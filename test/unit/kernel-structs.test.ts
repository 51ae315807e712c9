// The uAPI tables against the sizes and offsets of the fact sheet, and the
// encoders/decoders against them. test/vm/kernel-headers.test.ts checks the
// same tables against the real 6.12 headers.
import test from "ava";
import fc from "fast-check";
import {
  allStructs, constants, decodeFaultRecords, decodeStruct, encodeFaultRecord, encodePageResponses, encodeStruct, ioctls,
  iommuDestroy, iommuFaultAlloc, iommuHwptAlloc, iommuHwptPageResponse, iommuHwptPgfault, iommuIoasAlloc,
  iommuTestCmdMockDomain, iommuTestCmdMockDomainReplace, iommuTestCmdTriggerIopf, type FaultRecord, type StructDef,
} from "../../src/kernel/uapi-structs.js";

function layout(def: StructDef<string>): Record<string, number> {
  return Object.fromEntries(Object.values(def.fields).map((f) => [f.c, f.offset]));
}

test("struct sizes and field offsets match the uAPI", (t) => {
  t.is(iommuDestroy.size, 8);
  t.deepEqual(layout(iommuDestroy), { size: 0, id: 4 });
  t.is(iommuIoasAlloc.size, 12);
  t.deepEqual(layout(iommuIoasAlloc), { size: 0, flags: 4, out_ioas_id: 8 });
  t.is(iommuFaultAlloc.size, 16);
  t.deepEqual(layout(iommuFaultAlloc), { size: 0, flags: 4, out_fault_id: 8, out_fault_fd: 12 });
  t.is(iommuHwptAlloc.size, 48);
  t.deepEqual(layout(iommuHwptAlloc), {
    size: 0, flags: 4, dev_id: 8, pt_id: 12, out_hwpt_id: 16, __reserved: 20, data_type: 24, data_len: 28, data_uptr: 32,
    fault_id: 40, __reserved2: 44,
  });
  t.is(iommuHwptPgfault.size, 40);
  t.deepEqual(layout(iommuHwptPgfault), {
    flags: 0, dev_id: 4, pasid: 8, grpid: 12, perm: 16, __reserved: 20, addr: 24, length: 32, cookie: 36,
  });
  t.is(iommuHwptPageResponse.size, 8);
  t.deepEqual(layout(iommuHwptPageResponse), { cookie: 0, code: 4 });
  const header = { size: 0, op: 4, id: 8, __reserved: 12, last: 64 };
  t.is(iommuTestCmdMockDomain.size, 72);
  t.deepEqual(layout(iommuTestCmdMockDomain), {
    ...header, "mock_domain.out_stdev_id": 16, "mock_domain.out_hwpt_id": 20, "mock_domain.out_idev_id": 24,
  });
  t.deepEqual(layout(iommuTestCmdMockDomainReplace), { ...header, "mock_domain_replace.pt_id": 16 });
  t.deepEqual(layout(iommuTestCmdTriggerIopf), {
    ...header, "trigger_iopf.dev_id": 16, "trigger_iopf.pasid": 20, "trigger_iopf.grpid": 24, "trigger_iopf.perm": 28,
    "trigger_iopf.addr": 32,
  });
});

test("no field overlaps another or runs past its struct, and u64 fields are 8-byte aligned", (t) => {
  for (const def of allStructs) {
    const spans = Object.values(def.fields).map((f) => ({ ...f, end: f.offset + (f.type === "u64" ? 8 : 4) }))
      .sort((a, b) => a.offset - b.offset);
    spans.forEach((f, i) => {
      t.true(f.end <= def.size, `${def.c}.${f.c} ends at ${f.end}, past size ${def.size}`);
      if (f.type === "u64") t.is(f.offset % 8, 0, `${def.c}.${f.c}`);
      const next = spans[i + 1];
      if (next) t.true(f.end <= next.offset, `${def.c}.${f.c} overlaps ${next.c}`);
    });
  }
});

test("ioctl numbers are _IO(';', nr)", (t) => {
  t.deepEqual({ ...ioctls }, {
    IOMMU_DESTROY: 0x3b80, IOMMU_IOAS_ALLOC: 0x3b81, IOMMU_HWPT_ALLOC: 0x3b89, IOMMU_FAULT_QUEUE_ALLOC: 0x3b8e,
    IOMMU_TEST_CMD: 0x3ba0,
  });
  t.is(constants.IOMMU_TEST_OP_TRIGGER_IOPF, 15);
});

test("encodeStruct sets size, writes u64 as lo/hi, and decodeStruct reads it back", (t) => {
  const buf = encodeStruct(iommuHwptAlloc, { flags: 4, devId: 7, ptId: 9, dataType: 0xdead, dataLen: 4, dataUptr: 0x7fff_1234_5678, faultId: 3 });
  t.is(buf.length, 48);
  t.is(buf.readUInt32LE(0), 48);
  t.is(buf.readUInt32LE(32), 0x1234_5678);
  t.is(buf.readUInt32LE(36), 0x7fff);
  t.deepEqual(decodeStruct(iommuHwptAlloc, buf), {
    size: 48, flags: 4, devId: 7, ptId: 9, outHwptId: 0, reserved: 0, dataType: 0xdead, dataLen: 4, dataUptr: 0x7fff_1234_5678,
    faultId: 3, reserved2: 0,
  });
  const cmd = encodeStruct(iommuTestCmdTriggerIopf, { op: 15, devId: 2, pasid: 1, grpid: 3, perm: 3, addr: 0xdead_b000 });
  t.is(cmd.length, 72);
  t.is(cmd.readUInt32LE(0), 72);
  t.is(cmd.readUInt32LE(32), 0xdead_b000);
});

test("encodeStruct rejects values its fields cannot hold, saying which and why", (t) => {
  t.throws(() => encodeStruct(iommuDestroy, { id: -1 }), { message: /iommu_destroy\.id: expected a u32, got -1/ });
  t.throws(() => encodeStruct(iommuHwptAlloc, { dataUptr: 2 ** 53 }), { message: /data_uptr: expected a u64 below 2\^53/ });
  t.throws(() => decodeStruct(iommuHwptPgfault, Buffer.alloc(39)), { message: /expected 40 bytes/ });
});

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const record = fc.record({
  flags: fc.integer({ min: 0, max: 3 }), devId: u32, pasid: u32, grpid: u32, perm: fc.integer({ min: 0, max: 15 }),
  // Page addresses, and any safe integer (encodeStruct takes u64s below 2^53).
  addr: fc.oneof(fc.integer({ min: 0, max: 2 ** 41 - 1 }).map((page) => page * 4096), fc.maxSafeNat()),
  length: u32, cookie: u32,
}) satisfies fc.Arbitrary<FaultRecord>;

test("fault records decode as encoded, at any offset of a batch", (t) => {
  fc.assert(fc.property(fc.array(record, { minLength: 1, maxLength: 20 }), fc.integer({ min: 0, max: 3 }), (records, pad) => {
    const bytes = Buffer.concat([Buffer.alloc(pad * 8), ...records.map(encodeFaultRecord)]);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    t.deepEqual(decodeFaultRecords(view, pad * 8, records.length), records);
  }));
});

test("a 4 KiB-aligned address above 2^53 decodes exactly", (t) => {
  const bytes = Buffer.alloc(40);
  bytes.writeBigUInt64LE(0xffff_ffff_ffff_f000n, 24);
  const [r] = decodeFaultRecords(new DataView(bytes.buffer, bytes.byteOffset, 40), 0, 1);
  t.is(BigInt(r!.addr), 0xffff_ffff_ffff_f000n);
});

test("decoding masks flags to PASID_VALID|LAST_PAGE and ignores __reserved", (t) => {
  const bytes = encodeFaultRecord({ flags: 3, devId: 1, pasid: 2, grpid: 3, perm: 1, addr: 0x1000, length: 0, cookie: 9 });
  bytes.writeUInt32LE(0x7, 0); // Intel hosts leak an internal bit 1<<2
  bytes.writeUInt32LE(0xdeadbeef, 20); // stale kernel bytes in the hole
  const [r] = decodeFaultRecords(new DataView(bytes.buffer, bytes.byteOffset, 40), 0, 1);
  t.deepEqual(r, { flags: 3, devId: 1, pasid: 2, grpid: 3, perm: 1, addr: 0x1000, length: 0, cookie: 9 });
});

test("page responses encode as {u32 cookie, u32 code}, a slice at a time", (t) => {
  fc.assert(fc.property(fc.array(fc.record({ cookie: u32, code: fc.integer({ min: 0, max: 1 }) }), { maxLength: 30 }), fc.nat(30), (answers, cut) => {
    const start = Math.min(cut, answers.length);
    const buf = Buffer.alloc(answers.length * 8);
    t.is(encodePageResponses(answers, start, answers.length, buf), (answers.length - start) * 8);
    answers.slice(start).forEach((a, i) => {
      t.deepEqual(decodeStruct(iommuHwptPageResponse, buf, i * 8), a);
    });
  }));
});
