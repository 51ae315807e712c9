// The answer tables: each model's native code to the link's ResponseCode,
// and the link's code to the one iommufd takes. FAILURE must never reach the
// kernel (iommufd has no FAILURE; PCIe Response Failure disables PRI for the
// whole function), and an unknown code must become INVALID and say so.
import test from "ava";
import fc from "fast-check";
import { codecForModel } from "../../src/viommu/models.js";
import { KernelCode, linkToKernel, ResponseCode } from "../../src/viommu/response-code.js";
import { smmuv3Codec } from "../../src/viommu/smmuv3.js";
import { virtioIommuCodec } from "../../src/viommu/virtio-iommu.js";
import { vtdCodec } from "../../src/viommu/vtd.js";
import { iopf } from "../../src/gen/guest_link.js";

const { RESPONSE_SUCCESS: SUCCESS, RESPONSE_INVALID: INVALID, RESPONSE_FAILURE: FAILURE } = ResponseCode;

test("link to kernel: SUCCESS 0, INVALID 1, FAILURE becomes INVALID and is a known code", (t) => {
  t.deepEqual(linkToKernel(SUCCESS), { code: KernelCode.SUCCESS, unknown: false });
  t.deepEqual(linkToKernel(INVALID), { code: KernelCode.INVALID, unknown: false });
  t.deepEqual(linkToKernel(FAILURE), { code: KernelCode.INVALID, unknown: false });
  t.is(KernelCode.SUCCESS, 0);
  t.is(KernelCode.INVALID, 1);
});

test("link to kernel: any other code becomes INVALID and is reported unknown", (t) => {
  for (const code of [3, 15, 0xffff_ffff, -1, 1.5, Number.NaN]) {
    t.deepEqual(linkToKernel(code), { code: KernelCode.INVALID, unknown: true }, `code ${code}`);
  }
});

const tables = [
  // [codec, native code, link code]: from QI_RESP_*, enum pri_resp, VIRTIO_IOMMU_PAGE_RESP_*.
  { codec: vtdCodec, known: [[0x0, SUCCESS], [0x1, INVALID], [0xf, FAILURE]] },
  { codec: smmuv3Codec, known: [[2, SUCCESS], [0, INVALID], [1, FAILURE]] },
  { codec: virtioIommuCodec, known: [[0, SUCCESS], [1, INVALID], [2, FAILURE]] },
] as const;

for (const { codec, known } of tables) {
  test(`${codec.name} native codes map to link codes, and the native FAILURE reaches the kernel as INVALID`, (t) => {
    for (const [native, link] of known) {
      t.deepEqual(codec.toLinkCode(native), { code: link, unknown: false }, `native ${native}`);
    }
    const failure = codec.toLinkCode(codec.codes.failure);
    t.is(linkToKernel(failure.code).code, KernelCode.INVALID);
  });

  test(`${codec.name} unknown native codes become INVALID and are reported unknown`, (t) => {
    const knownNative = new Set<number>(known.map(([native]) => native));
    fc.assert(
      fc.property(fc.nat({ max: 0xffff }).filter((n) => !knownNative.has(n)), (native) => {
        const mapped = codec.toLinkCode(native);
        return mapped.code === INVALID && mapped.unknown;
      }),
    );
    t.pass();
  });
}

test("the model enum of the link picks each encoding, and no other value does", (t) => {
  const { ViommuModel } = iopf.link.v1;
  t.is(codecForModel(ViommuModel.VIRTIO_IOMMU), virtioIommuCodec);
  t.is(codecForModel(ViommuModel.INTEL_VTD), vtdCodec);
  t.is(codecForModel(ViommuModel.ARM_SMMUV3), smmuv3Codec);
  t.is(codecForModel(ViommuModel.VIOMMU_MODEL_UNSPECIFIED), null);
  t.is(codecForModel(9), null);
});
