// Runs raiser.c (compiled on the host, shipped in the job archive) on a mock
// device and reads back when each fault was raised.
import { spawn } from "node:child_process";
import { once } from "node:events";
import type { MockFaultDevice } from "./mock-fault-device.js";
import { GUEST_RAISER } from "./protocol.js";

/** "PASID US" lines of raiser.c or responder.c: microseconds (CLOCK_REALTIME) by PASID. */
export function parseTimes(who: string, text: string, count: number): Map<number, number> {
  const times = new Map<number, number>();
  for (const line of text.split("\n")) {
    const m = /^(\d+) (\d+)$/.exec(line);
    if (m) times.set(Number(m[1]), Number(m[2]));
  }
  if (times.size !== count) throw new Error(`${who}: expected ${count} "PASID US" lines, got ${times.size}; its output ends:\n${text.slice(-800)}`);
  return times;
}

/** Raises count faults with PASIDs pasidBase.., back to back (rateHz 0) or at rateHz; resolves with their raise times. */
export async function raise(device: MockFaultDevice, pasidBase: number, count: number, rateHz: number): Promise<Map<number, number>> {
  const args = [String(device.devId), String(pasidBase), String(count), String(rateHz)];
  const raiser = spawn(GUEST_RAISER, args, { stdio: ["ignore", "pipe", "pipe", device.iommufd] });
  let stdout = "", stderr = "";
  raiser.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  raiser.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  // "close", not "exit": the timestamps may still be in the pipe at exit.
  const [code] = (await once(raiser, "close")) as [number | null];
  if (code !== 0) throw new Error(`raiser ${args.join(" ")} exited with code ${code}, expected 0: ${stderr.trim()}`);
  return parseTimes("raiser", stdout, count);
}
