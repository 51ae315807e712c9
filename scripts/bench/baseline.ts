// The baseline path: the kernel emulator answered directly by the C
// baseline responder, no relay, no guest. Same emulator, same loads, so a
// ratio to it is the cost of the relay path alone.
import { compileC } from "../../src/fault/emulator/compile-c.js";
import { EmulatorStats, KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";
import { Child } from "./child.js";
import { BASELINE_SOURCE } from "./paths.js";

export class BaselinePath {
  private constructor(readonly emulator: KernelEmulator, readonly responder: Child) {}

  /** delayUs > 0 answers each group that long after reading it (INVALID), as a deadline would. */
  static async start(delayUs = 0): Promise<BaselinePath> {
    const bin = await compileC(BASELINE_SOURCE);
    const emulator = await KernelEmulator.start();
    const responder = new Child("baseline-responder", bin, [String(delayUs)], [emulator.faultFd]);
    return new BaselinePath(emulator, responder);
  }

  async stop(): Promise<EmulatorStats> {
    await this.responder.stop();
    const final = await this.emulator.quit();
    await this.emulator.close();
    return final;
  }
}
