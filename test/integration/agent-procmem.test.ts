// procmem against a real process: a small C program maps untouched anonymous
// memory, memory it filled, a read-only file mapping, a PROT_NONE page and a
// hole. The agent faults pages in through /proc/PID/mem; pagemap shows the
// effect, and the program's own checksums show its memory never changed.
import test from "ava";
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Agent } from "../../guest-agent/agent.js";
import { AgentClient } from "../../guest-agent/app/client.js";
import { AgentConfig, defaultConfig, HandlerRule } from "../../guest-agent/config.js";
import { silentLogger } from "../../guest-agent/log.js";
import { HostLink } from "../../src/link/host-link.js";
import { pb, WirePageResponse } from "../../src/link/messages.js";
import { UnixListener } from "../../src/link/transport/unix.js";
import { FAST_TIMERS } from "../support/link-peers.js";
import { until } from "../support/memory-stream.js";

const SUCCESS = pb.ResponseCode.RESPONSE_SUCCESS;
const INVALID = pb.ResponseCode.RESPONSE_INVALID;
const FAILURE = pb.ResponseCode.RESPONSE_FAILURE;
const R = 1;
const W = 2;
const X = 4;

const CHILD_C = String.raw`
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#define PAGES 64
static uint64_t fnv(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ULL; }
  return h;
}
static size_t nonzero(const uint8_t *p, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) k += p[i] != 0;
  return k;
}
int main(int argc, char **argv) {
  size_t ps = (size_t)sysconf(_SC_PAGESIZE), len = PAGES * ps;
  int prw = PROT_READ | PROT_WRITE, anon = MAP_PRIVATE | MAP_ANONYMOUS;
  uint8_t *a = mmap(NULL, len, prw, anon, -1, 0);
  uint8_t *b = mmap(NULL, len, prw, anon, -1, 0);
  /* One 4 KiB page each: THP would fault neighbours in with the page asked for. */
  madvise(a, len, MADV_NOHUGEPAGE);
  madvise(b, len, MADV_NOHUGEPAGE);
  for (size_t i = 0; i < len; i++) b[i] = (uint8_t)(i * 7 + 1);
  int fd = open(argv[1], O_RDONLY);
  uint8_t *c = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
  uint8_t *d = mmap(NULL, ps, PROT_NONE, anon, -1, 0);
  uint8_t *h = mmap(NULL, 3 * ps, PROT_READ, anon, -1, 0);
  munmap(h + ps, ps);
  if (a == MAP_FAILED || b == MAP_FAILED || c == MAP_FAILED || d == MAP_FAILED || h == MAP_FAILED) return 1;
  printf("{\"pageSize\":%zu,\"a\":%lu,\"b\":%lu,\"c\":%lu,\"d\":%lu,\"hole\":%lu}\n", ps,
         (unsigned long)a, (unsigned long)b, (unsigned long)c, (unsigned long)d, (unsigned long)(h + ps));
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    /* Summing a reads it, so the untouched region is summed only when asked. */
    int all = strncmp(line, "all", 3) == 0;
    printf("{\"aNonzero\":%zu,\"b\":\"%016lx\",\"c\":\"%016lx\"}\n", all ? nonzero(a, len) : 0,
           (unsigned long)fnv(b, len), (unsigned long)fnv(c, len));
    fflush(stdout);
  }
  return 0;
}
`;

interface Layout {
  pageSize: number;
  a: number;
  b: number;
  c: number;
  d: number;
  hole: number;
}

interface Sums {
  aNonzero: number;
  b: string;
  c: string;
}

class Child {
  private readonly lines: string[] = [];
  private waiting: ((line: string) => void) | null = null;

  constructor(readonly proc: ChildProcessWithoutNullStreams) {
    createInterface({ input: proc.stdout }).on("line", (line) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(line);
      } else this.lines.push(line);
    });
  }

  next(): Promise<string> {
    const line = this.lines.shift();
    return line !== undefined ? Promise.resolve(line) : new Promise((resolve) => (this.waiting = resolve));
  }

  async sums(all: boolean): Promise<Sums> {
    this.proc.stdin.write(all ? "all\n" : "some\n");
    return JSON.parse(await this.next()) as Sums;
  }
}

/** Bit 63 (present) and bit 56 (exclusively mapped) of the page's pagemap entry. */
function pageState(pid: number, address: number, pageSize: number): { present: boolean; exclusive: boolean } {
  const fd = openSync(`/proc/${pid}/pagemap`, "r");
  try {
    const b = Buffer.alloc(8);
    readSync(fd, b, 0, 8, Math.floor(address / pageSize) * 8);
    const e = b.readBigUInt64LE(0);
    return { present: (e >> 63n) === 1n, exclusive: ((e >> 56n) & 1n) === 1n };
  } finally {
    closeSync(fd);
  }
}

function request(tag: number, pasid: number, pages: [number, number][]) {
  return { tag, endpoint: 8, pasid, pasidValid: true, groupIndex: tag, pages: pages.map(([address, perm]) => ({ address, perm })), budgetUs: 500_000 };
}

test("procmem faults a real process's pages in, refuses what its mappings refuse, and never changes its memory", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "agent-procmem-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "child.c"), CHILD_C);
  execFileSync("gcc", ["-O1", "-o", join(dir, "child"), join(dir, "child.c")]);
  writeFileSync(join(dir, "data"), Buffer.alloc(64 * 65536, 0x3c));
  const child = new Child(spawn(join(dir, "child"), [join(dir, "data")]));
  t.teardown(() => child.proc.kill("SIGKILL"));
  const pid = child.proc.pid as number;
  const at = JSON.parse(await child.next()) as Layout;
  const ps = at.pageSize;
  const before = await child.sums(false);

  const listener = await UnixListener.listen(join(dir, "relay.sock"));
  t.teardown(() => listener.close());
  const responses: WirePageResponse[] = [];
  let host: HostLink | null = null;
  listener.on("connection", (stream) => {
    host = new HostLink(
      stream,
      {
        sessionUp: () => undefined,
        pageResponses: (_e, r) => responses.push(...r.responses),
        credit: () => undefined,
        sessionDown: () => undefined,
      refused: () => undefined,
        writable: () => undefined,
        closed: () => undefined,
      },
      { model: pb.ViommuModel.VIRTIO_IOMMU, endpoints: [], software: "test-relay", nextEpoch: () => 1, resyncTimers: FAST_TIMERS },
    );
    host.start();
  });
  const handlers: HandlerRule[] = [
    { pasid: 9, handler: "procmem", pid, writes: "procmem" },
    { pasid: 11, handler: "procmem", pid, writes: "app" },
    ...defaultConfig().handlers,
  ];
  const config: AgentConfig = { ...defaultConfig(), port: { ...defaultConfig().port, connect: `unix:${join(dir, "relay.sock")}` }, appSocket: join(dir, "app.sock"), handlers, retryMinMs: 10 };
  const agent = await Agent.start({ config, log: silentLogger, resyncTimers: FAST_TIMERS });
  t.teardown(() => agent.stop());
  await until(() => (host as HostLink | null)?.current != null, 10_000, "session up");
  const relay = host as unknown as HostLink;
  let tag = 0;
  const ask = async (pasid: number, pages: [number, number][]): Promise<number> => {
    const mine = ++tag;
    relay.sendPageRequests([request(mine, pasid, pages)]);
    await until(() => responses.some((r) => r.tag === mine), 10_000, `answer to tag ${mine}`);
    return (responses.find((r) => r.tag === mine) as WirePageResponse).code;
  };
  const state = (address: number) => pageState(pid, address, ps);

  // Reads: absent before, present after. Most kernels map the shared zero page
  // (not exclusive); some (mm_forbids_zeropage) give the page a frame of its own.
  t.false(state(at.a + 3 * ps).present);
  t.is(await ask(9, [[at.a + 3 * ps, R]]), SUCCESS);
  const afterRead = state(at.a + 3 * ps);
  t.true(afterRead.present);
  const zeroPage = !afterRead.exclusive;
  t.log(zeroPage ? "reads map the shared zero page" : "this kernel gives read faults a page of their own");
  t.false(state(at.a + 4 * ps).present, "only the page asked for");

  // Writes: every page is read-faulted first. Where that maps the zero page, a
  // write fault follows (the byte rewritten); where it gave an exclusive page,
  // that page is writable already and no write is needed.
  t.is(await ask(9, [[at.a + 5 * ps, R | W]]), SUCCESS);
  t.deepEqual(state(at.a + 5 * ps), { present: true, exclusive: true });
  t.is(await ask(9, [[at.a + 3 * ps, W]]), SUCCESS);
  t.deepEqual(state(at.a + 3 * ps), { present: true, exclusive: true });
  t.is(agent.counters.get("procmem.write.rewritten"), zeroPage ? 2 : 0);
  // A page the process wrote is writable already: no write; asked again soon, it is rewritten.
  const skipped = agent.counters.get("procmem.write.skipped");
  t.is(await ask(9, [[at.b + 2 * ps, W]]), SUCCESS);
  t.is(agent.counters.get("procmem.write.skipped"), skipped + 1);
  t.is(await ask(9, [[at.b + 2 * ps, W]]), SUCCESS);
  t.is(agent.counters.get("procmem.write.rewritten"), zeroPage ? 3 : 1);

  // The read-only file mapping (which the checksum already read in): reads
  // yes, writes and execution no; a group with one refused page touches none.
  t.is(await ask(9, [[at.c + ps, R]]), SUCCESS);
  t.is(await ask(9, [[at.c + 2 * ps, W]]), INVALID);
  t.is(await ask(9, [[at.c + 2 * ps, R | X]]), INVALID);
  t.is(await ask(9, [[at.a + 30 * ps, R], [at.c + 3 * ps, W]]), INVALID);
  t.false(state(at.a + 30 * ps).present, "the allowed page of a refused group stays untouched");
  // PROT_NONE, a hole, an address beyond user space.
  t.is(await ask(9, [[at.d, R]]), INVALID);
  t.is(await ask(9, [[at.hole, R]]), INVALID);
  t.is(await ask(9, [[2 ** 60, R]]), INVALID);
  t.is(agent.counters.get("procmem.invalid.no-write"), 2);
  t.is(agent.counters.get("procmem.invalid.unmapped"), 1);

  // A process that registers itself, and writes routed to the app.
  const app = await AgentClient.connect(join(dir, "app.sock"));
  t.teardown(() => app.close());
  app.onPageRequest(() => "failure");
  await app.registerProcess(10, pid);
  await app.register(11);
  t.is(await ask(10, [[at.a + 20 * ps, R]]), SUCCESS);
  t.true(state(at.a + 20 * ps).present);
  t.is(await ask(11, [[at.a + 21 * ps, R]]), SUCCESS, "reads of PASID 11 stay with procmem");
  t.is(await ask(11, [[at.a + 22 * ps, W]]), FAILURE, "its writes go to the app");
  t.false(state(at.a + 22 * ps).present);

  const after = await child.sums(true);
  t.is(after.b, before.b, "the filled memory is unchanged");
  t.is(after.c, before.c, "the file mapping is unchanged");
  t.is(after.aNonzero, 0, "the untouched memory still reads as zeros");

  // The process exits: its PASID answers INVALID and the pid is not followed.
  child.proc.kill("SIGKILL");
  await new Promise((resolve) => child.proc.once("exit", resolve));
  t.is(await ask(9, [[at.a, R]]), INVALID);
  t.is(agent.counters.get("procmem.invalid.exited"), 1);
  t.is(await ask(9, [[at.a, R]]), INVALID, "and stays refused");
});
