// One IOMMUFD_TEST mock device whose faults land on a fault object of its
// own, allocated as the kernel selftest does (and as
// test/integration/kernel-scenario.ts does): an IOAS, a nest-parent HWPT,
// a nested selftest HWPT tied to the fault object, the device moved onto it.
import { IommuFd, type MockDevice } from "../../../src/kernel/iommufd.js";
import * as libc from "../../../src/kernel/libc.js";
import { constants } from "../../../src/kernel/uapi-structs.js";

export class MockFaultDevice {
  private constructor(
    private readonly ctx: IommuFd,
    private readonly ioas: number,
    private readonly mock: MockDevice,
    private readonly parentHwpt: number,
    private readonly iopfHwpt: number,
    private readonly faultId: number,
    /** Read and answered by whoever this fd is handed to. */
    readonly faultFd: number,
  ) {}

  static open(): MockFaultDevice {
    const ctx = IommuFd.open();
    const ioas = ctx.ioasAlloc();
    const { faultId, faultFd } = ctx.faultQueueAlloc();
    // The selftest's driver data for a nested mock HWPT: a u32 IOTLB id.
    const data = Buffer.alloc(4);
    data.writeUInt32LE(constants.IOMMU_TEST_IOTLB_DEFAULT);
    const mock = ctx.mockDomain(ioas);
    const parentHwpt = ctx.hwptAlloc({ devId: mock.idevId, ptId: ioas, flags: constants.IOMMU_HWPT_ALLOC_NEST_PARENT });
    const iopfHwpt = ctx.hwptAlloc({
      devId: mock.idevId, ptId: parentHwpt, flags: constants.IOMMU_HWPT_FAULT_ID_VALID,
      dataType: constants.IOMMU_HWPT_DATA_SELFTEST, data, faultId,
    });
    ctx.mockDomainReplace(mock.stdevId, iopfHwpt);
    return new MockFaultDevice(ctx, ioas, mock, parentHwpt, iopfHwpt, faultId, faultFd);
  }

  /** The iommufd that owns the device: the raiser triggers faults through it. */
  get iommufd(): number {
    return this.ctx.fd;
  }

  /** The device's id in fault records (dev_id) and in TRIGGER_IOPF. */
  get devId(): number {
    return this.mock.idevId;
  }

  /** Moving the device off the fault HWPT answers INVALID whatever is still queued; then everything is destroyed. */
  close(): void {
    const { ctx } = this;
    ctx.mockDomainReplace(this.mock.stdevId, this.parentHwpt);
    ctx.destroy(this.iopfHwpt);
    ctx.mockDomainReplace(this.mock.stdevId, this.ioas);
    ctx.destroy(this.parentHwpt);
    libc.close(this.faultFd);
    ctx.destroy(this.faultId);
    ctx.destroy(this.mock.stdevId);
    ctx.destroy(this.ioas);
    ctx.close();
  }
}
