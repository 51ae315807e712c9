// Guest side (VM-A): the VMM stand-in (vmm-stand-in.ts) as the
// handoff-hotplug scenario runs it: a child process it sends commands to,
// whose own lines go to the console with a prefix.
import { spawn } from "node:child_process";
import { ControlClient } from "./control-channel.js";
import { echoLines } from "./guest-processes.js";
import type { VmmCommands } from "./vmm-commands.js";

const STAND_IN = "/opt/iopf-relay/build/test/vm/e2e/vmm-stand-in.js";

export class VmmProcess {
  /** "code N" or "signal S", once it has exited. */
  readonly exited: Promise<string>;

  private constructor(
    readonly pid: number,
    /** Its commands (vmm-commands.ts). */
    readonly vmm: ControlClient<VmmCommands>,
    private readonly stdin: NodeJS.WritableStream,
    exited: Promise<string>,
  ) {
    this.exited = exited;
  }

  /** Starts the stand-in, handing over to the relay's handoff socket. */
  static start(handoffSocket: string, label: string): VmmProcess {
    const child = spawn(process.execPath, [STAND_IN, handoffSocket], { stdio: ["pipe", "pipe", "pipe"] });
    if (child.pid === undefined) throw new Error(`the VMM stand-in (${STAND_IN}) could not be started`);
    const exited = new Promise<string>((resolve) => child.once("exit", (code, signal) => resolve(signal ? `signal ${signal}` : `code ${code}`)));
    echoLines(child.stderr!, label);
    return new VmmProcess(child.pid, ControlClient.over<VmmCommands>(child.stdout!, child.stdin!, `the VMM stand-in (pid ${child.pid})`), child.stdin!, exited);
  }

  /** Closes its stdin: it exits as it is, detaching nothing. Resolves with how it exited. */
  exit(): Promise<string> {
    this.stdin.end();
    return this.exited;
  }
}
