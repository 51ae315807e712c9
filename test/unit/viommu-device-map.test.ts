// The device map: building it from the config, every validation message,
// and the lookups the relay makes per fault group.
import test from "ava";
import { DeviceMapConfigError } from "../../src/viommu/config-problem.js";
import { parseDeviceMap } from "../../src/viommu/device-config.js";
import { formatRequesterId, parseRequesterId } from "../../src/viommu/requester-id.js";
import { iopf } from "../../src/gen/guest_link.js";

function problemsOf(config: unknown): string[] {
  try {
    parseDeviceMap(config);
  } catch (err) {
    if (err instanceof DeviceMapConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
  throw new Error("the config was accepted");
}

const vtd = parseDeviceMap({
  viommu: "vtd",
  unrelated: "other keys of the relay config are not the device map's business",
  devices: [
    { devId: 3, requesterId: "00:03.0", name: "nic", deadlineMs: 250 },
    { devId: 4, requesterId: "00:04.0", pasid: { "17": 1, "18": 2 } },
    { devId: 4, hostPasid: 9, requesterId: 0x20, pasid: 7 },
    { devId: 5, requesterId: "1f:1f.7" },
  ],
});

test("a device-wide entry maps faults with and without a PASID; identity is the default translation", (t) => {
  t.deepEqual(vtd.lookup(3, 42), { device: vtd.entries[0], pasid: 42, pasidValid: true });
  t.deepEqual(vtd.lookup(3, null), { device: vtd.entries[0], pasid: 0, pasidValid: false });
  t.is(vtd.entries[0]?.endpoint, 0x0018);
  t.is(vtd.entries[0]?.deadlineMs, 250);
});

test("a table translates listed host PASIDs only; an entry for one host PASID wins over the device-wide one", (t) => {
  t.deepEqual(vtd.lookup(4, 17), { device: vtd.entries[1], pasid: 1, pasidValid: true });
  t.deepEqual(vtd.lookup(4, 18), { device: vtd.entries[1], pasid: 2, pasidValid: true });
  t.is(vtd.lookup(4, 19), null, "a host PASID the table does not list is unknown");
  t.deepEqual(vtd.lookup(4, 9), { device: vtd.entries[2], pasid: 7, pasidValid: true });
  t.deepEqual(vtd.lookup(4, null), { device: vtd.entries[1], pasid: 0, pasidValid: false });
});

test("an unknown dev_id is a normal event: null, no throw", (t) => {
  t.is(vtd.lookup(99, null), null);
  t.is(vtd.lookup(99, 1), null);
});

test("an entry for one host PASID only does not serve the device's other PASIDs", (t) => {
  const map = parseDeviceMap({ viommu: "smmuv3", devices: [{ devId: 1, hostPasid: 5, streamId: 8 }] });
  t.deepEqual(map.lookup(1, 5), { device: map.entries[0], pasid: 5, pasidValid: true });
  t.is(map.lookup(1, 6), null);
  t.is(map.lookup(1, null), null);
});

test("defaults: deadline 100 ms, and a name made from the guest endpoint, never from the host dev_id", (t) => {
  t.is(vtd.entries[1]?.deadlineMs, 100);
  t.is(vtd.entries[1]?.name, "00:04.0");
  t.is(vtd.entries[3]?.name, "1f:1f.7");
  const virtio = parseDeviceMap({ viommu: "virtio-iommu", devices: [{ devId: 777, endpointId: 8 }] });
  t.is(virtio.entries[0]?.name, "endpoint-8");
  const smmu = parseDeviceMap({ viommu: "smmuv3", devices: [{ devId: 777, streamId: 8 }] });
  t.is(smmu.entries[0]?.name, "sid-8");
});

test("the map carries its model's name and encoding", (t) => {
  t.is(vtd.viommu, "vtd");
  t.is(vtd.codec.model, iopf.link.v1.ViommuModel.INTEL_VTD);
  t.is(parseDeviceMap({ viommu: "virtio-iommu", devices: [] }).codec.model, iopf.link.v1.ViommuModel.VIRTIO_IOMMU);
});

test("requester ids: bus:dev.fn both ways, and what is not one", (t) => {
  t.is(parseRequesterId("00:03.0"), 0x18);
  t.is(parseRequesterId("FF:1F.7"), 0xffff);
  t.is(formatRequesterId(0xffff), "ff:1f.7");
  t.is(formatRequesterId(0x0119), "01:03.1");
  for (const bad of ["zz", "00:20.0", "00:03.8", "0000:00:03.0", "0:3.0", " 00:03.0"]) t.is(parseRequesterId(bad), null, bad);
});

const cases: [string, unknown, string[]][] = [
  ["a requester id that is not bus:dev.fn",
    { viommu: "vtd", devices: [{ devId: 1, requesterId: "00:01.0" }, { devId: 2, requesterId: "00:02.0" }, { devId: 3, requesterId: "zz" }] },
    ['devices[2].requesterId: expected "bus:dev.fn" like "00:03.0" or a number 0..65535, got "zz"']],
  ["a requester id number above 16 bits",
    { viommu: "vtd", devices: [{ devId: 1, requesterId: 65536 }] },
    ['devices[0].requesterId: expected "bus:dev.fn" like "00:03.0" or a number 0..65535, got 65536']],
  ["an unknown model",
    { viommu: "intel", devices: [] },
    ['viommu: expected one of "virtio-iommu", "vtd", "smmuv3" (the guest\'s one vIOMMU), got "intel"']],
  ["no devices array",
    { viommu: "smmuv3", devices: { devId: 1 } },
    ["devices: expected an array of devices, got an object"]],
  ["a device that is not an object",
    { viommu: "smmuv3", devices: [5] },
    ['devices[0]: expected an object like {"devId": 3, "streamId": ...}, got 5']],
  ["a missing devId and a missing endpoint",
    { viommu: "smmuv3", devices: [{}] },
    ["devices[0].devId: expected an iommufd device id, an integer 0..4294967295, got nothing",
      "devices[0].streamId: expected an SMMUv3 StreamID, an integer 0..4294967295, got nothing"]],
  ["a devId given as a string",
    { viommu: "virtio-iommu", devices: [{ devId: "3", endpointId: 1 }] },
    ['devices[0].devId: expected an iommufd device id, an integer 0..4294967295, got "3"']],
  ["an endpoint key of another model",
    { viommu: "vtd", devices: [{ devId: 1, requesterId: "00:01.0", streamId: 4 }] },
    ["devices[0].streamId: expected requesterId, the endpoint key of this map's viommu, got streamId, which belongs to another vIOMMU model"]],
  ["a misspelled key",
    { viommu: "vtd", devices: [{ devId: 1, requesterId: "00:01.0", deadline_ms: 50 }] },
    ["devices[0].deadline_ms: unknown key; expected one of devId, hostPasid, name, deadlineMs, pasid, requesterId"]],
  ["a host PASID above 20 bits",
    { viommu: "smmuv3", devices: [{ devId: 1, hostPasid: 0x100000, streamId: 1 }] },
    ["devices[0].hostPasid: expected a host PASID, an integer 0..1048575, or no hostPasid key to serve every PASID, got 1048576"]],
  ["deadlines of 0, too long, and as a string",
    { viommu: "smmuv3", devices: [{ devId: 1, streamId: 1, deadlineMs: 0 }, { devId: 2, streamId: 2, deadlineMs: 100000 }, { devId: 3, streamId: 3, deadlineMs: "100" }] },
    ["devices[0].deadlineMs: expected milliseconds, an integer 1..60000 (default 100), got 0",
      "devices[1].deadlineMs: expected milliseconds, an integer 1..60000 (default 100), got 100000",
      'devices[2].deadlineMs: expected milliseconds, an integer 1..60000 (default 100), got "100"']],
  ["an empty name and a control character",
    { viommu: "smmuv3", devices: [{ devId: 1, streamId: 1, name: "" }, { devId: 2, streamId: 2, name: "a\nb" }] },
    ['devices[0].name: expected 1..64 printable ASCII characters, got ""',
      'devices[1].name: expected 1..64 printable ASCII characters, got "a\\nb"']],
  ["a single guest PASID without hostPasid",
    { viommu: "smmuv3", devices: [{ devId: 1, streamId: 1, pasid: 3 }] },
    ['devices[0].pasid: expected "identity" or a table like {"17": 1} of host PASID to guest PASID (a single guest PASID needs hostPasid), got 3']],
  ["a guest PASID above 20 bits for one host PASID",
    { viommu: "smmuv3", devices: [{ devId: 1, hostPasid: 2, streamId: 1, pasid: 0x100000 }] },
    ['devices[0].pasid: expected "identity" or a table like {"17": 1} of host PASID to guest PASID, or the one guest PASID 0..1048575, got 1048576']],
  ["a table with a bad key, a bad value and a guest PASID used twice",
    { viommu: "smmuv3", devices: [{ devId: 1, streamId: 1, pasid: { "0x5": 1, "6": -1, "7": 2, "8": 2 } }] },
    // JavaScript objects list integer-like keys first, so "0x5" comes last.
    ['devices[0].pasid["6"]: expected a guest PASID, an integer 0..1048575, got -1',
      'devices[0].pasid["8"]: expected each guest PASID once, got guest PASID 2 again (host PASID 7 maps to it); two host address spaces cannot share one guest PASID',
      'devices[0].pasid["0x5"]: expected a host PASID as a decimal key 0..1048575, got "0x5"']],
  ["two device-wide entries for one dev_id",
    { viommu: "smmuv3", devices: [{ devId: 1, streamId: 1 }, { devId: 1, streamId: 1 }] },
    ["devices[1].devId: expected each (devId, hostPasid) once, got dev_id 1 with no hostPasid again (devices[0] maps it); merge the two entries or give each its own hostPasid"]],
  ["two entries for one host PASID of a dev_id",
    { viommu: "smmuv3", devices: [{ devId: 1, hostPasid: 4, streamId: 1 }, { devId: 1, hostPasid: 4, streamId: 1 }] },
    ["devices[1].devId: expected each (devId, hostPasid) once, got dev_id 1 with hostPasid 4 again (devices[0] maps it); merge the two entries or give each its own hostPasid"]],
  ["one guest endpoint for two host devices",
    { viommu: "vtd", devices: [{ devId: 1, requesterId: "00:03.0" }, { devId: 2, requesterId: 0x18 }] },
    ["devices[1].requesterId: expected each guest endpoint to belong to one host device, got requesterId 00:03.0 again (devices[0] maps it to dev_id 1); give this device its own endpoint"]],
  ["a config that is not an object",
    [],
    ['(config): expected an object with keys "viommu" and "devices", got an array']],
];

for (const [what, config, expected] of cases) {
  test(`config error: ${what}`, (t) => {
    t.deepEqual(problemsOf(config), expected);
  });
}

test("every problem is reported at once, in one error whose message lists them", (t) => {
  const error = t.throws(() => parseDeviceMap({ viommu: "nope", devices: "none" }), { instanceOf: DeviceMapConfigError });
  t.is(error?.problems.length, 2);
  t.regex(error?.message ?? "", /^device map: 2 problems in the "viommu"\/"devices" config:\n {2}viommu: expected one of .*\n {2}devices: expected an array of devices, got "none"$/);
});
