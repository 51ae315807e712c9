// The baseline answering side: responder.c on the mock device's fault fd,
// one process per run (it exits after answering the run's faults and then
// prints when it answered each).
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import type { Answerer, ArmedRun } from "./answerer.js";
import type { MockFaultDevice } from "./mock-fault-device.js";
import { GUEST_RESPONDER } from "./protocol.js";
import { parseTimes } from "./raise.js";

export class CResponder implements Answerer {
  private current: ChildProcess | null = null;

  constructor(private readonly device: MockFaultDevice) {}

  // The responder times every answer whether asked to or not.
  async arm(pasidBase: number, count: number): Promise<ArmedRun> {
    // stdin stays open: the responder exits when it closes, so it cannot outlive this driver.
    const child = spawn(GUEST_RESPONDER, [String(count)], { stdio: ["pipe", "pipe", "pipe", this.device.faultFd] });
    this.current = child;
    let stdout = "", stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const closed = once(child, "close") as Promise<[number | null]>;
    const ready = new Promise<void>((resolve) => {
      child.stdout!.on("data", (chunk: Buffer) => {
        stdout += chunk.toString("utf8");
        if (stdout.startsWith("ready\n")) resolve();
      });
    });
    const failed = (code: number | null): Error => new Error(`responder ${count} (faults ${pasidBase}..) exited with code ${code}, expected 0 after answering them all: ${stderr.trim()}`);
    await Promise.race([ready, closed.then(([code]) => Promise.reject(failed(code)))]);
    const answered = closed.then(([code]) => {
      if (code !== 0) throw failed(code);
      return parseTimes("responder", stdout.slice("ready\n".length), count);
    });
    return { answered };
  }

  /** Only a responder still waiting (a run that failed) is left to kill: the others exited after their run. */
  async stop(): Promise<null> {
    const child = this.current;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await once(child, "close");
    }
    return null;
  }
}
