// The iommufd uAPI, byte for byte, in one place: every struct's size and field
// offsets are written here once, and test/vm/kernel-headers.test.ts compiles
// them against the Linux 6.12 headers (offsetof/sizeof, ioctl numbers and
// flag values). Everything else encodes and decodes through these tables.
// All fields are little-endian u32 or u64 (x86-64 and arm64 hosts).

export type FieldType = "u32" | "u64";

export interface FieldDef {
  readonly offset: number;
  readonly type: FieldType;
  /** The C member designator, for offsetof() in the header test. */
  readonly c: string;
}

export interface StructDef<K extends string> {
  /** The C struct tag, without "struct". */
  readonly c: string;
  readonly size: number;
  readonly fields: { readonly [P in K]: FieldDef };
}

function struct<K extends string>(c: string, size: number, fields: Record<K, [number, FieldType, string]>): StructDef<K> {
  const out = {} as Record<K, FieldDef>;
  for (const key of Object.keys(fields) as K[]) {
    const [offset, type, cName] = fields[key];
    out[key] = { offset, type, c: cName };
  }
  return { c, size, fields: out };
}

export const iommuDestroy = struct("iommu_destroy", 8, {
  size: [0, "u32", "size"],
  id: [4, "u32", "id"],
});

export const iommuIoasAlloc = struct("iommu_ioas_alloc", 12, {
  size: [0, "u32", "size"],
  flags: [4, "u32", "flags"],
  outIoasId: [8, "u32", "out_ioas_id"],
});

export const iommuFaultAlloc = struct("iommu_fault_alloc", 16, {
  size: [0, "u32", "size"],
  flags: [4, "u32", "flags"],
  outFaultId: [8, "u32", "out_fault_id"],
  outFaultFd: [12, "u32", "out_fault_fd"],
});

/** The 48-byte form of 6.11 and later (fault_id and __reserved2 at the end). */
export const iommuHwptAlloc = struct("iommu_hwpt_alloc", 48, {
  size: [0, "u32", "size"],
  flags: [4, "u32", "flags"],
  devId: [8, "u32", "dev_id"],
  ptId: [12, "u32", "pt_id"],
  outHwptId: [16, "u32", "out_hwpt_id"],
  reserved: [20, "u32", "__reserved"],
  dataType: [24, "u32", "data_type"],
  dataLen: [28, "u32", "data_len"],
  dataUptr: [32, "u64", "data_uptr"],
  faultId: [40, "u32", "fault_id"],
  reserved2: [44, "u32", "__reserved2"],
});

/** One fault record read from the fault fd. __reserved@20 may hold stale kernel bytes before the 2025 fix: never read. */
export const iommuHwptPgfault = struct("iommu_hwpt_pgfault", 40, {
  flags: [0, "u32", "flags"],
  devId: [4, "u32", "dev_id"],
  pasid: [8, "u32", "pasid"],
  grpid: [12, "u32", "grpid"],
  perm: [16, "u32", "perm"],
  reserved: [20, "u32", "__reserved"],
  addr: [24, "u64", "addr"],
  length: [32, "u32", "length"],
  cookie: [36, "u32", "cookie"],
});

/** One answer written to the fault fd. */
export const iommuHwptPageResponse = struct("iommu_hwpt_page_response", 8, {
  cookie: [0, "u32", "cookie"],
  code: [4, "u32", "code"],
});

// struct iommu_test_cmd (72 bytes, CONFIG_IOMMUFD_TEST): a header, an op union
// from offset 16, and `last` at 64. One view per op this project uses.
const testCmdHeader = {
  size: [0, "u32", "size"],
  op: [4, "u32", "op"],
  id: [8, "u32", "id"],
  reserved: [12, "u32", "__reserved"],
  last: [64, "u32", "last"],
} as const satisfies Record<string, [number, FieldType, string]>;

export const iommuTestCmdMockDomain = struct("iommu_test_cmd", 72, {
  ...testCmdHeader,
  outStdevId: [16, "u32", "mock_domain.out_stdev_id"],
  outHwptId: [20, "u32", "mock_domain.out_hwpt_id"],
  outIdevId: [24, "u32", "mock_domain.out_idev_id"],
});

export const iommuTestCmdMockDomainReplace = struct("iommu_test_cmd", 72, {
  ...testCmdHeader,
  ptId: [16, "u32", "mock_domain_replace.pt_id"],
});

export const iommuTestCmdTriggerIopf = struct("iommu_test_cmd", 72, {
  ...testCmdHeader,
  devId: [16, "u32", "trigger_iopf.dev_id"],
  pasid: [20, "u32", "trigger_iopf.pasid"],
  grpid: [24, "u32", "trigger_iopf.grpid"],
  perm: [28, "u32", "trigger_iopf.perm"],
  addr: [32, "u64", "trigger_iopf.addr"],
});

/** Every struct view, for the size/offset tests. */
export const allStructs: readonly StructDef<string>[] = [
  iommuDestroy, iommuIoasAlloc, iommuFaultAlloc, iommuHwptAlloc, iommuHwptPgfault, iommuHwptPageResponse,
  iommuTestCmdMockDomain, iommuTestCmdMockDomainReplace, iommuTestCmdTriggerIopf,
];

const IOMMUFD_TYPE = 0x3b; // ';'
/** _IO(IOMMUFD_TYPE, nr): iommufd encodes no size or direction in its ioctl numbers. */
const io = (nr: number): number => (IOMMUFD_TYPE << 8) | nr;

/** ioctl numbers, by their C macro names. */
export const ioctls = {
  IOMMU_DESTROY: io(0x80),
  IOMMU_IOAS_ALLOC: io(0x81),
  IOMMU_HWPT_ALLOC: io(0x89),
  IOMMU_FAULT_QUEUE_ALLOC: io(0x8e),
  IOMMU_TEST_CMD: io(0x80 + 32),
} as const;

/** Flag and enum values, by their C names. */
export const constants = {
  IOMMU_HWPT_ALLOC_NEST_PARENT: 1 << 0,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING: 1 << 1,
  IOMMU_HWPT_FAULT_ID_VALID: 1 << 2,
  IOMMU_PGFAULT_FLAGS_PASID_VALID: 1 << 0,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE: 1 << 1,
  IOMMU_PGFAULT_PERM_READ: 1 << 0,
  IOMMU_PGFAULT_PERM_WRITE: 1 << 1,
  IOMMU_PGFAULT_PERM_EXEC: 1 << 2,
  IOMMU_PGFAULT_PERM_PRIV: 1 << 3,
  IOMMUFD_PAGE_RESP_SUCCESS: 0,
  IOMMUFD_PAGE_RESP_INVALID: 1,
  IOMMU_TEST_OP_MOCK_DOMAIN: 2,
  IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: 10,
  IOMMU_TEST_OP_TRIGGER_IOPF: 15,
  IOMMU_HWPT_DATA_SELFTEST: 0xdead,
  IOMMU_TEST_IOTLB_DEFAULT: 0xbadbeef,
} as const;

/** The flag bits a record may carry; Intel hosts leak an internal bit 1<<2 that is masked off. */
export const PGFAULT_FLAGS_MASK = constants.IOMMU_PGFAULT_FLAGS_PASID_VALID | constants.IOMMU_PGFAULT_FLAGS_LAST_PAGE;
export const FAULT_RECORD_SIZE = iommuHwptPgfault.size;
export const PAGE_RESPONSE_SIZE = iommuHwptPageResponse.size;

const TWO_32 = 2 ** 32;

function writeField(buf: Buffer, base: number, f: FieldDef, value: number, where: string): void {
  if (f.type === "u32") {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new RangeError(`${where}: expected a u32, got ${value}`);
    }
    buf.writeUInt32LE(value, base + f.offset);
  } else {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`${where}: expected a u64 below 2^53 (a JavaScript safe integer), got ${value}`);
    }
    buf.writeUInt32LE(value % TWO_32, base + f.offset);
    buf.writeUInt32LE(Math.floor(value / TWO_32), base + f.offset + 4);
  }
}

function readField(buf: Buffer, base: number, f: FieldDef): number {
  const lo = buf.readUInt32LE(base + f.offset);
  return f.type === "u32" ? lo : buf.readUInt32LE(base + f.offset + 4) * TWO_32 + lo;
}

/**
 * A zeroed struct with the given fields set; a `size` field, when the struct
 * has one and it is not given, is set to the struct's size (the kernel's
 * extensible-struct convention).
 */
export function encodeStruct<K extends string>(def: StructDef<K>, values: Partial<Record<K, number>>): Buffer {
  const buf = Buffer.alloc(def.size);
  const fields = def.fields as Record<string, FieldDef | undefined>;
  const sizeField = fields["size"];
  if (sizeField && (values as Record<string, number | undefined>)["size"] === undefined) {
    writeField(buf, 0, sizeField, def.size, `${def.c}.size`);
  }
  for (const key of Object.keys(values) as K[]) {
    const value = values[key];
    const f = fields[key];
    if (f === undefined) throw new TypeError(`struct ${def.c} has no field ${key}`);
    if (value !== undefined) writeField(buf, 0, f, value, `${def.c}.${f.c}`);
  }
  return buf;
}

/** Every field of the struct at buf[offset...]; u64 fields above 2^53 lose precision (none this project reads can be). */
export function decodeStruct<K extends string>(def: StructDef<K>, buf: Buffer, offset = 0): Record<K, number> {
  if (buf.length - offset < def.size) {
    throw new RangeError(`struct ${def.c}: expected ${def.size} bytes at offset ${offset}, the buffer has ${buf.length - offset}`);
  }
  const out = {} as Record<K, number>;
  for (const key of Object.keys(def.fields) as K[]) out[key] = readField(buf, offset, def.fields[key]);
  return out;
}

/** A decoded iommu_hwpt_pgfault: flags masked to PASID_VALID|LAST_PAGE, __reserved dropped. */
export interface FaultRecord {
  flags: number;
  devId: number;
  pasid: number;
  grpid: number;
  perm: number;
  /** Exact: fault addresses are 4 KiB aligned u64s, and every u64 below 2^53 is exact too. */
  addr: number;
  length: number;
  cookie: number;
}

/** One iommu_hwpt_page_response. */
export interface FaultAnswer {
  cookie: number;
  /** IOMMUFD_PAGE_RESP_SUCCESS (0) or IOMMUFD_PAGE_RESP_INVALID (1). */
  code: number;
}

// The hot decoder reads offsets from the table above once, at load.
const F = iommuHwptPgfault.fields;
const [O_FLAGS, O_DEV, O_PASID, O_GRPID, O_PERM, O_ADDR, O_LEN, O_COOKIE] =
  [F.flags, F.devId, F.pasid, F.grpid, F.perm, F.addr, F.length, F.cookie].map((f) => f.offset) as [number, number, number, number, number, number, number, number];

/** Decodes `count` records starting at byte `offset` of view. */
export function decodeFaultRecords(view: DataView, offset: number, count: number): FaultRecord[] {
  const out = new Array<FaultRecord>(count);
  for (let i = 0, p = offset; i < count; i++, p += FAULT_RECORD_SIZE) {
    out[i] = {
      flags: view.getUint32(p + O_FLAGS, true) & PGFAULT_FLAGS_MASK,
      devId: view.getUint32(p + O_DEV, true),
      pasid: view.getUint32(p + O_PASID, true),
      grpid: view.getUint32(p + O_GRPID, true),
      perm: view.getUint32(p + O_PERM, true),
      addr: view.getUint32(p + O_ADDR + 4, true) * TWO_32 + view.getUint32(p + O_ADDR, true),
      length: view.getUint32(p + O_LEN, true),
      cookie: view.getUint32(p + O_COOKIE, true),
    };
  }
  return out;
}

/** How many of the `count` records at byte `offset` of view close a group (LAST_PAGE): the groups they hold. */
export function countLastPages(view: DataView, offset: number, count: number): number {
  let groups = 0;
  for (let i = 0, p = offset + O_FLAGS; i < count; i++, p += FAULT_RECORD_SIZE) {
    if (view.getUint32(p, true) & constants.IOMMU_PGFAULT_FLAGS_LAST_PAGE) groups++;
  }
  return groups;
}

/** Encodes one record (for the emulator's tests and the struct tests); __reserved is written as 0. */
export function encodeFaultRecord(r: FaultRecord): Buffer {
  return encodeStruct(iommuHwptPgfault, r);
}

const A = iommuHwptPageResponse.fields;

/** Writes answers[start, end) into buf from offset 0 and returns the byte count; buf must hold them. */
export function encodePageResponses(answers: readonly FaultAnswer[], start: number, end: number, buf: Buffer): number {
  let p = 0;
  for (let i = start; i < end; i++, p += PAGE_RESPONSE_SIZE) {
    const a = answers[i]!;
    buf.writeUInt32LE(a.cookie, p + A.cookie.offset);
    buf.writeUInt32LE(a.code, p + A.code.offset);
  }
  return p;
}
