// One IOMMUFD_TEST mock device whose faults land on a fault object of its
// own, in an iommufd and an IOAS of its own (src/kernel/selftest-device.ts
// sets the device up as the kernel selftest does).
import { IommuFd } from "../../../src/kernel/iommufd.js";
import * as libc from "../../../src/kernel/libc.js";
import { destroyMock, mockOnFaultQueue, moveOffFaultQueue, type FaultingMock } from "../../../src/kernel/selftest-device.js";

export class MockFaultDevice {
  private constructor(
    private readonly ctx: IommuFd,
    private readonly ioas: number,
    private readonly mock: FaultingMock,
    private readonly faultId: number,
    /** Read and answered by whoever this fd is handed to. */
    readonly faultFd: number,
  ) {}

  static open(): MockFaultDevice {
    const ctx = IommuFd.open();
    const ioas = ctx.ioasAlloc();
    const { faultId, faultFd } = ctx.faultQueueAlloc();
    return new MockFaultDevice(ctx, ioas, mockOnFaultQueue(ctx, ioas, faultId), faultId, faultFd);
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
    moveOffFaultQueue(ctx, this.mock);
    destroyMock(ctx, this.ioas, this.mock);
    libc.close(this.faultFd);
    ctx.destroy(this.faultId);
    ctx.destroy(this.ioas);
    ctx.close();
  }
}
