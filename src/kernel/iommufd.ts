// An iommufd context: the /dev/iommu fd and the commands the relay and its
// tests issue on it. Object ids are the kernel's; nothing here caches state.
import * as libc from "./libc.js";
import {
  constants, decodeStruct, encodeStruct, ioctls, iommuDestroy, iommuFaultAlloc, iommuHwptAlloc, iommuIoasAlloc,
  iommuTestCmdMockDomain, iommuTestCmdMockDomainReplace, iommuTestCmdTriggerIopf, type StructDef,
} from "./uapi-structs.js";

export interface HwptAllocOptions {
  devId: number;
  /** An IOAS, or a parent HWPT for a nested HWPT. */
  ptId: number;
  /** IOMMU_HWPT_ALLOC_* and IOMMU_HWPT_FAULT_ID_VALID bits. */
  flags?: number;
  /** Driver-specific data: its type and bytes (kept referenced for the call). */
  dataType?: number;
  data?: Buffer;
  /** With IOMMU_HWPT_FAULT_ID_VALID in flags: the fault object to report to. */
  faultId?: number;
}

export interface MockDevice {
  stdevId: number;
  hwptId: number;
  idevId: number;
}

export interface TriggerIopf {
  idevId: number;
  pasid: number;
  grpid: number;
  perm: number;
  addr: number;
}

const TEST_CMD_HINT = "IOMMU_TEST_CMD needs a kernel built with CONFIG_IOMMUFD_TEST (see scripts/vm/guest-kernel.config)";

export class IommuFd {
  #fd: number;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /** Opens /dev/iommu (or the given path) read-write, close-on-exec. */
  static open(path = "/dev/iommu"): IommuFd {
    return new IommuFd(
      libc.open(path, libc.O_RDWR, "iommufd needs CONFIG_IOMMUFD and access to /dev/iommu (root, or a udev rule); without them use the kernel emulator"),
    );
  }

  /** Takes an iommufd inherited from a parent process (e.g. QEMU's); close() will close it. */
  static adopt(fd: number): IommuFd {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`IommuFd.adopt: expected an open fd number, got ${fd}`);
    return new IommuFd(fd);
  }

  get fd(): number {
    if (this.#fd < 0) throw new Error("IommuFd: used after close(); open or adopt a new one");
    return this.#fd;
  }

  #ioctl<K extends string>(name: keyof typeof ioctls, def: StructDef<K>, values: Partial<Record<K, number>>, hint?: string): Record<K, number> {
    const buf = encodeStruct(def, values);
    libc.ioctl(this.fd, ioctls[name], buf, `ioctl ${name} on iommufd fd ${this.#fd}`, hint);
    return decodeStruct(def, buf);
  }

  ioasAlloc(): number {
    return this.#ioctl("IOMMU_IOAS_ALLOC", iommuIoasAlloc, {}).outIoasId;
  }

  /** A fault object and its fd (close-on-exec, read-write; reads never block). */
  faultQueueAlloc(): { faultId: number; faultFd: number } {
    const out = this.#ioctl("IOMMU_FAULT_QUEUE_ALLOC", iommuFaultAlloc, { flags: 0 },
      "IOMMU_FAULT_QUEUE_ALLOC needs Linux 6.11 or later");
    return { faultId: out.outFaultId, faultFd: out.outFaultFd };
  }

  hwptAlloc(o: HwptAllocOptions): number {
    const data = o.data;
    const out = this.#ioctl("IOMMU_HWPT_ALLOC", iommuHwptAlloc, {
      flags: o.flags ?? 0,
      devId: o.devId,
      ptId: o.ptId,
      dataType: o.dataType ?? 0,
      dataLen: data?.length ?? 0,
      dataUptr: data ? libc.addressOf(data) : 0,
      faultId: o.faultId ?? 0,
    });
    // The kernel reads data through its address during the synchronous ioctl;
    // no JavaScript runs (so no GC) on this thread until the call returns.
    return out.outHwptId;
  }

  destroy(id: number): void {
    this.#ioctl("IOMMU_DESTROY", iommuDestroy, { id },
      "EBUSY means the object is still used: close its fd, destroy the HWPTs using it, or detach its devices first");
  }

  /** Selftest: a mock device attached to a new HWPT of the given IOAS. */
  mockDomain(ioasId: number): MockDevice {
    const out = this.#ioctl("IOMMU_TEST_CMD", iommuTestCmdMockDomain,
      { op: constants.IOMMU_TEST_OP_MOCK_DOMAIN, id: ioasId }, TEST_CMD_HINT);
    return { stdevId: out.outStdevId, hwptId: out.outHwptId, idevId: out.outIdevId };
  }

  /** Selftest: attaches the mock device to another page table (detaching it from the current one). */
  mockDomainReplace(stdevId: number, ptId: number): void {
    this.#ioctl("IOMMU_TEST_CMD", iommuTestCmdMockDomainReplace,
      { op: constants.IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, id: stdevId, ptId }, TEST_CMD_HINT);
  }

  /** Selftest: the mock device raises one fault, always LAST_PAGE (a group of one record). */
  triggerIopf(f: TriggerIopf): void {
    this.#ioctl("IOMMU_TEST_CMD", iommuTestCmdTriggerIopf, {
      op: constants.IOMMU_TEST_OP_TRIGGER_IOPF, devId: f.idevId, pasid: f.pasid, grpid: f.grpid, perm: f.perm, addr: f.addr,
    }, `${TEST_CMD_HINT}, and IOMMU_IOPF (selected by INTEL_IOMMU_SVM on 6.12) or the mock device gives ENODEV`);
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    libc.close(fd);
  }
}
