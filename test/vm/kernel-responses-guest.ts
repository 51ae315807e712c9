// Runs inside the test VM: proves that counting the kernel's calls of
// iopf_group_response() (test/vm/e2e/kernel-responses.ts) counts one answer
// per group, whoever gives it. On the IOMMUFD_TEST mock devices of the shared
// fault scenario (devices 0 and 1 share one fault queue): N groups of device
// 0 are read and answered through the fault fd, a repeated answer is refused;
// device 1 is detached with M groups waiting (some read, some not), which the
// kernel answers itself, and answers written for them afterwards are refused.
// The count must be N, then N + M, and stay there. Prints one
// "IOPF-RESPONSES <json>" line for test/vm/kernel-scenario.test.ts.
import { EINVAL } from "../../src/kernel/errno.js";
import * as libc from "../../src/kernel/libc.js";
import { constants, decodeFaultRecords, encodePageResponses, FAULT_RECORD_SIZE, PAGE_RESPONSE_SIZE, type FaultAnswer, type FaultRecord } from "../../src/kernel/uapi-structs.js";
import { kernelScenarioSource } from "../integration/kernel-scenario.js";
import { startCountingResponses } from "./e2e/kernel-responses.js";

export interface ResponsesReport {
  n: number;
  m: number;
  /** The count after each step, by step name. */
  counts: Record<string, number>;
  failures: string[];
}

const N = 6;
const M_READ = 3;
const M_UNREAD = 2;
const R = constants.IOMMU_PGFAULT_PERM_READ;

function readRecords(fd: number): FaultRecord[] {
  const buf = Buffer.alloc(100 * FAULT_RECORD_SIZE);
  const n = libc.read(fd, buf, buf.length);
  if (n < 0) throw new Error(`read of fault fd ${fd} failed: errno ${-n}`);
  return decodeFaultRecords(new DataView(buf.buffer, buf.byteOffset, n), 0, n / FAULT_RECORD_SIZE);
}

/** write() of the answers in one call: bytes taken, or -errno. */
function writeAnswers(fd: number, answers: FaultAnswer[]): number {
  const buf = Buffer.alloc(answers.length * PAGE_RESPONSE_SIZE);
  return libc.write(fd, buf, encodePageResponses(answers, 0, answers.length, buf));
}

async function run(): Promise<ResponsesReport> {
  const failures: string[] = [];
  const counts: Record<string, number> = {};
  const check = (ok: boolean, what: string, detail?: unknown): void => {
    if (!ok) failures.push(detail === undefined ? what : `${what}: ${JSON.stringify(detail)}`);
  };
  const src = kernelScenarioSource();
  const { fds, devIds } = await src.setup();
  const fd = fds[0]!;
  const counter = startCountingResponses();
  const step = (name: string, expected: number): void => {
    counts[name] = counter.count();
    check(counts[name] === expected, `after ${name} the kernel answered ${expected} groups`, counts[name]);
  };
  try {
    step("start", 0);

    const raise = async (device: number, grpid: number): Promise<void> =>
      src.raise(device, { pasid: 1, grpid, perm: R, addr: 0x40_0000 + grpid * 0x1000 });
    for (let g = 1; g <= N; g++) await raise(0, g);
    const first = readRecords(fd);
    check(first.length === N && first.every((r) => r.devId === devIds[0]), `read the ${N} groups of device 0`, first);
    step("raised, read, not answered", 0);
    const answers = first.map((r) => ({ cookie: r.cookie, code: constants.IOMMUFD_PAGE_RESP_SUCCESS }));
    check(writeAnswers(fd, answers) === N * PAGE_RESPONSE_SIZE, `the ${N} answers were taken in one write`);
    step(`${N} answered through the fault fd`, N);
    check(writeAnswers(fd, [answers[0]!]) === -EINVAL, "a repeated answer is refused with EINVAL");
    step("a repeated answer", N);

    for (let g = 1; g <= M_READ; g++) await raise(1, 100 + g);
    const held = readRecords(fd);
    check(held.length === M_READ && held.every((r) => r.devId === devIds[1]), `read the ${M_READ} groups of device 1`, held);
    for (let g = 1; g <= M_UNREAD; g++) await raise(1, 200 + g);
    await src.detach(1);
    step(`device 1 detached with ${M_READ} groups read and ${M_UNREAD} unread`, N + M_READ + M_UNREAD);
    const late = held.map((r) => ({ cookie: r.cookie, code: constants.IOMMUFD_PAGE_RESP_INVALID }));
    check(writeAnswers(fd, late) === -EINVAL, "answers for the groups the detach answered are refused with EINVAL");
    check(readRecords(fd).length === 0, "the detach took device 1's unread groups off the queue");
    step("answers after the detach", N + M_READ + M_UNREAD);

    await src.teardown();
    step("teardown (nothing waiting)", N + M_READ + M_UNREAD);
  } finally {
    counter.stop();
  }
  return { n: N, m: M_READ + M_UNREAD, counts, failures };
}

const report: ResponsesReport = await run().catch((err: unknown) => ({
  n: N, m: M_READ + M_UNREAD, counts: {},
  failures: [`threw: ${err instanceof Error ? err.stack ?? err.message : String(err)}`],
}));
// A leading newline: kernel messages may have left the console mid-line.
process.stdout.write(`\nIOPF-RESPONSES ${JSON.stringify(report)}\n`);
process.exitCode = report.failures.length === 0 ? 0 : 1;
