// An IOMMUFD_TEST mock device whose IO page faults go to a fault object, set
// up as the kernel selftest does (tools/testing/selftests/iommu): a mock
// device in an IOAS, a nest-parent HWPT, a nested selftest HWPT tied to the
// fault object, the device moved onto it; and taken down again. For the
// tests and benchmarks on the real kernel (CONFIG_IOMMUFD_TEST).
import type { IommuFd, MockDevice } from "./iommufd.js";
import { constants } from "./uapi-structs.js";

export interface FaultingMock extends MockDevice {
  /** The nest-parent HWPT: where the device goes when it leaves the fault HWPT. */
  parentHwpt: number;
  /** The nested HWPT whose faults go to the fault object. */
  iopfHwpt: number;
}

/** A new mock device in the IOAS whose faults go to the fault object faultId. */
export function mockOnFaultQueue(ctx: IommuFd, ioas: number, faultId: number): FaultingMock {
  const mock = ctx.mockDomain(ioas);
  const parentHwpt = ctx.hwptAlloc({ devId: mock.idevId, ptId: ioas, flags: constants.IOMMU_HWPT_ALLOC_NEST_PARENT });
  // The selftest's driver data for a nested mock HWPT: a u32 IOTLB id.
  const data = Buffer.alloc(4);
  data.writeUInt32LE(constants.IOMMU_TEST_IOTLB_DEFAULT);
  const iopfHwpt = ctx.hwptAlloc({
    devId: mock.idevId, ptId: parentHwpt, flags: constants.IOMMU_HWPT_FAULT_ID_VALID,
    dataType: constants.IOMMU_HWPT_DATA_SELFTEST, data, faultId,
  });
  ctx.mockDomainReplace(mock.stdevId, iopfHwpt);
  return { ...mock, parentHwpt, iopfHwpt };
}

/** Moves the device off its fault HWPT (a VMM's detach): the kernel answers INVALID to its groups still waiting. */
export function moveOffFaultQueue(ctx: IommuFd, d: FaultingMock): void {
  ctx.mockDomainReplace(d.stdevId, d.parentHwpt);
}

/** Destroys the device and its HWPTs once it is off the fault HWPT; the IOAS and the fault object stay the caller's. */
export function destroyMock(ctx: IommuFd, ioas: number, d: FaultingMock): void {
  ctx.destroy(d.iopfHwpt);
  ctx.mockDomainReplace(d.stdevId, ioas);
  ctx.destroy(d.parentHwpt);
  ctx.destroy(d.stdevId);
}
