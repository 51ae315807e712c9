// Open process memories by pid, opened on first use. A process seen to have
// exited stays refused until a new registration binds its pid again: a pid
// from the config file must not silently follow a new process that happens
// to be given the same number.
import { Logger } from "../../log.js";
import { ProcessMemory } from "./process-memory.js";

export class ProcessTable {
  private readonly open = new Map<number, ProcessMemory>();
  private readonly exited = new Set<number>();

  constructor(
    private readonly pageSize: number,
    private readonly log: Logger,
  ) {}

  /** Throws (with what to do) when the process's memory cannot be opened. */
  get(pid: number): ProcessMemory {
    let proc = this.open.get(pid);
    if (!proc) {
      if (this.exited.has(pid)) throw new Error(`pid ${pid} has exited; a process using this PASID must register again over the app socket`);
      proc = ProcessMemory.open(pid, this.pageSize);
      this.open.set(pid, proc);
      this.log.info("procmem: opened process memory", { pid });
    }
    return proc;
  }

  /** A process registered itself with this pid: it is live now, and files of an earlier holder of the pid go. */
  bind(pid: number): void {
    this.forget(pid, "the pid was registered again", false);
    this.exited.delete(pid);
  }

  /** Closes pid's files; `exited` keeps the pid refused until bind(). */
  forget(pid: number, why: string, exited: boolean): void {
    if (exited) this.exited.add(pid);
    const proc = this.open.get(pid);
    if (!proc) return;
    this.open.delete(pid);
    proc.close();
    this.log.info("procmem: closed process memory", { pid, why });
  }

  closeAll(): void {
    for (const pid of [...this.open.keys()]) this.forget(pid, "the agent stops", false);
  }
}
