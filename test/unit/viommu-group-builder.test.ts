// The page request the guest receives for a host fault group: guest
// identifiers only. Host values here are distinctive so that any trace of
// them in the output, the raw records or the serialized protobuf shows.
import test from "ava";
import fc from "fast-check";
import { pb } from "../../src/link/messages.js";
import { parseDeviceMap } from "../../src/viommu/device-config.js";
import { buildPageRequest, whyUnfit, type HostGroup } from "../../src/viommu/group-builder.js";
import { GuestDevices } from "../../src/viommu/guest-devices.js";
import { KernelCode } from "../../src/viommu/response-code.js";
import { vtdCodec } from "../../src/viommu/vtd.js";
import type { ViommuName } from "../../src/viommu/models.js";
import { pageAddress, pageBits } from "../../src/viommu/record.js";

const HOST_DEV_ID = 0xdead_beef;
const HOST_PASID = 0xbeef5;
const COOKIE = 0xc00c_1e55;
const GUEST_PASID = 3;

/** A group as the fault layer holds it: with its cookie and other host-only fields. */
function hostGroup(overrides: Partial<HostGroup> = {}): HostGroup & { cookie: number; sourceId: number; readAtMs: number } {
  return {
    sourceId: 7,
    cookie: COOKIE,
    devId: HOST_DEV_ID,
    pasid: HOST_PASID,
    pasidValid: true,
    grpid: 0x1a5,
    pages: [
      { addr: 0x7f00_1234_5678, perm: 1 },
      { addr: 0x7f00_1234_6000, perm: 3 | 0x30 },
      { addr: 2 ** 64 - 4096, perm: 15 },
    ],
    readAtMs: 12.5,
    ...overrides,
  };
}

const endpointKey: Record<ViommuName, [string, unknown]> = {
  "virtio-iommu": ["endpointId", 0x11],
  vtd: ["requesterId", "00:02.1"],
  smmuv3: ["streamId", 0x11],
};

function mapFor(viommu: ViommuName) {
  const [key, value] = endpointKey[viommu];
  return parseDeviceMap({ viommu, devices: [{ devId: HOST_DEV_ID, [key]: value, name: "gpu", pasid: { [String(HOST_PASID)]: GUEST_PASID } }] });
}

/** The byte patterns a host value could leave behind: little- and big-endian u32, and its protobuf varint. */
function footprints(value: number): Buffer[] {
  const le = Buffer.alloc(4);
  le.writeUInt32LE(value);
  const varint: number[] = [];
  for (let v = value; ; v = Math.floor(v / 128)) {
    if (v < 128) {
      varint.push(v);
      break;
    }
    varint.push((v % 128) | 0x80);
  }
  return [le, Buffer.from(le).reverse(), Buffer.from(varint)];
}

for (const viommu of ["virtio-iommu", "vtd", "smmuv3"] as const) {
  test(`${viommu}: no host dev_id, host PASID or cookie anywhere in the page request, its raw records or its bytes`, (t) => {
    const map = mapFor(viommu);
    const group = hostGroup();
    const target = map.lookup(group.devId, group.pasid);
    if (target === null) return t.fail("the device is mapped");
    const request = buildPageRequest(group, target, map.codec, { tag: 9, budgetUs: 80_000, rawRecords: true });

    t.deepEqual(Object.keys(request).sort(), ["budgetUs", "endpoint", "groupIndex", "pages", "pasid", "pasidValid", "tag"]);
    for (const page of request.pages) t.deepEqual(Object.keys(page).sort(), ["address", "perm", "raw"]);
    const text = JSON.stringify(request);
    for (const host of [HOST_DEV_ID, HOST_PASID, COOKIE]) {
      t.false(text.includes(String(host)), `${host} in the JSON`);
      t.false(text.toLowerCase().includes(host.toString(16)), `${host.toString(16)} in the JSON`);
    }
    const wire = Buffer.from(pb.PageRequest.encode(request).finish());
    const raws = request.pages.map((p) => Buffer.from(p.raw));
    for (const host of [HOST_DEV_ID, HOST_PASID, COOKIE]) {
      for (const print of footprints(host)) {
        t.is(wire.indexOf(print), -1, `${print.toString("hex")} of ${host} in the serialized request`);
        for (const raw of raws) t.is(raw.indexOf(print), -1, `${print.toString("hex")} of ${host} in a raw record`);
      }
    }
  });

  test(`${viommu}: the guest sees its endpoint, its PASID, the group index, page addresses and permissions; LAST only on the last page`, (t) => {
    const map = mapFor(viommu);
    const group = hostGroup();
    const target = map.lookup(group.devId, group.pasid);
    if (target === null) return t.fail("the device is mapped");
    const request = buildPageRequest(group, target, map.codec, { tag: 9, budgetUs: 80_000, rawRecords: true });
    t.like(request, { tag: 9, endpoint: 0x11, pasid: GUEST_PASID, pasidValid: true, groupIndex: 0x1a5, budgetUs: 80_000 });
    t.deepEqual(request.pages.map((p) => [p.address, p.perm]), [[0x7f00_1234_5000, 1], [0x7f00_1234_6000, 3], [2 ** 64 - 4096, 15]]);
    const decoded = request.pages.map((p) => map.codec.decodePageRequest(p.raw));
    t.deepEqual(decoded.map((d) => d.last), [false, false, true]);
    for (const [i, d] of decoded.entries()) {
      t.like(d, { endpoint: 0x11, pasid: GUEST_PASID, pasidValid: true, groupIndex: 0x1a5, address: request.pages[i]?.address, perm: request.pages[i]?.perm });
    }
  });
}

test("without raw records the pages carry no record; a fault without PASID shows none", (t) => {
  const map = mapFor("smmuv3");
  const group = hostGroup({ pasidValid: false, pasid: 0 });
  const target = map.lookup(group.devId, null);
  if (target === null) return t.fail("the device is mapped");
  const request = buildPageRequest(group, target, map.codec, { tag: 1, budgetUs: 5, rawRecords: false });
  t.like(request, { pasid: 0, pasidValid: false });
  t.true(request.pages.every((p) => p.raw.length === 0));
});

test("whyUnfit: a group index, PASID or address the model cannot hold, another device's group, an empty group", (t) => {
  const map = mapFor("vtd");
  const target = map.lookup(HOST_DEV_ID, HOST_PASID);
  if (target === null) return t.fail("the device is mapped");
  t.is(whyUnfit(hostGroup(), target, vtdCodec), null);
  t.is(whyUnfit(hostGroup({ grpid: 0x200 }), target, vtdCodec), "group index 512 is beyond VT-d's 511");
  t.is(whyUnfit(hostGroup({ devId: 1 }), target, vtdCodec), 'the group is not of device "gpu"');
  t.is(whyUnfit(hostGroup({ pages: [] }), target, vtdCodec), "the group has no pages");
  t.is(whyUnfit(hostGroup({ pages: [{ addr: 2 ** 64, perm: 1 }] }), target, vtdCodec), "fault address 18446744073709552000 is not an integer 0..2^64-1");
  t.is(whyUnfit(hostGroup(), { ...target, pasid: 0x100000 }, vtdCodec), "guest PASID 1048576 is beyond VT-d's 1048575");
  t.throws(() => buildPageRequest(hostGroup({ grpid: 0x200 }), target, vtdCodec, { tag: 1, budgetUs: 1, rawRecords: false }), {
    instanceOf: RangeError,
    message: "page request for VT-d: group index 512 is beyond VT-d's 511; check with whyUnfit() first",
  });
});

test("GuestDevices: resolves mapped groups, refuses unknown and unfit ones, gives the deadline and the request", (t) => {
  const unfit: string[] = [];
  const devices = new GuestDevices(mapFor("vtd"), { unfit: (_, detail) => unfit.push(detail) });
  const target = devices.resolve(hostGroup());
  if (target === null) return t.fail("the device is mapped");
  t.deepEqual(devices.deadline(target), { ms: 100, code: KernelCode.INVALID });
  t.like(devices.pageRequest(hostGroup(), target, 4, 99, false), { tag: 4, endpoint: 0x11, pasid: GUEST_PASID, budgetUs: 99 });
  t.is(devices.resolve(hostGroup({ devId: 12 })), null);
  t.is(devices.resolve(hostGroup({ pasid: 1 })), null, "a host PASID the table does not list");
  t.is(devices.resolve(hostGroup({ grpid: 0xffff })), null);
  t.deepEqual(unfit, ["group index 65535 is beyond VT-d's 511"]);
});

test("pageAddress equals the BigInt mask for every u64 a number holds, near 2^53 and 2^64 too", (t) => {
  const u64 = fc.oneof(
    fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(Number).filter((n) => n < 2 ** 64),
    fc.nat({ max: Number.MAX_SAFE_INTEGER }),
    fc.integer({ min: -4096, max: 4096 }).map((d) => 2 ** 53 + d * 2),
  );
  fc.assert(fc.property(u64, (addr) => pageAddress(addr) === Number(pageBits("test", addr))), { numRuns: 20_000 });
  t.is(pageAddress(2 ** 64 - 2048), 2 ** 64 - 4096);
  t.is(pageAddress(0x7f00_1234_5678), 0x7f00_1234_5000);
});
