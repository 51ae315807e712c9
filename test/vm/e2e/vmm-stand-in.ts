// Runs inside VM-A of e2e-two-vms.test.ts for the handoff-hotplug scenario: a
// stand-in for a VMM that hands its fault queues to iopf-relay. Like QEMU it
// owns one iommufd with one IOAS; it plugs IOMMUFD_TEST mock devices, each on
// a fault queue of its own, and hands each queue over with the reference C
// client (scripts/handoff/iopf-handoff.c, run as its child with the fault fd
// inherited, naming this process as the VMM: everything in the guest runs
// as root, a manager to the relay, so the client says whose queue it is).
// It never reads a fault fd it handed over, but keeps its copy, for the
// check that no cookie is left to answer once the relay has let go.
// Argument: the relay's handoff socket. Commands (vmm-commands.ts) come on
// stdin, replies go on stdout; when stdin closes it exits as it is,
// detaching nothing, as a VMM that dies.
import { spawn } from "node:child_process";
import { IommuFd } from "../../../src/kernel/iommufd.js";
import * as libc from "../../../src/kernel/libc.js";
import { destroyMock, mockOnFaultQueue, moveOffFaultQueue, type FaultingMock } from "../../../src/kernel/selftest-device.js";
import { answerAgain } from "./answer-probes.js";
import { serveControl, type CommandTable } from "./control-channel.js";
import { GUEST_HANDOFF_CLIENT, type RelayReply, type VmmCommands } from "./vmm-commands.js";

/** The fault fd's number in the client: 0-2 are stdio. */
const CLIENT_FAULT_FD = 3;
const PAGE = 0x1000;

interface Plugged {
  mock: FaultingMock;
  faultId: number;
  faultFd: number;
  /** Groups raised on its queue: no cookie of the queue exceeds it. */
  raised: number;
}

const socket = process.argv[2];
if (!socket) {
  process.stderr.write("vmm-stand-in: expected the relay's handoff socket path as the argument\n");
  process.exit(2);
}

/** Runs the C client with args (and the fault fd as its fd 3); its reply, or a throw with its stderr. */
function handoffClient(args: string[], faultFd: number | null): Promise<RelayReply> {
  const child = spawn(GUEST_HANDOFF_CLIENT, ["--socket", socket!, ...args], { stdio: ["ignore", "pipe", "pipe", ...(faultFd === null ? [] : [faultFd])] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => {
      if (code === 0) resolve(JSON.parse(out) as RelayReply);
      else reject(new Error(`iopf-handoff ${args.join(" ")} exited ${code}, expected 0: ${err.trim() || out.trim()}`));
    });
  });
}

const ctx = IommuFd.open();
const ioas = ctx.ioasAlloc();
const plugged = new Map<number, Plugged>();

function device(devId: number): Plugged {
  const p = plugged.get(devId);
  if (!p) throw new Error(`no device ${devId} is plugged (plugged: ${[...plugged.keys()].join(", ") || "none"})`);
  return p;
}

const commands: CommandTable<VmmCommands> = {
  async plug({ endpointId, name, deadlineMs }) {
    const { faultId, faultFd } = ctx.faultQueueAlloc();
    const mock = mockOnFaultQueue(ctx, ioas, faultId);
    plugged.set(mock.idevId, { mock, faultId, faultFd, raised: 0 });
    const devices = JSON.stringify([{ devId: mock.idevId, endpointId, name, deadlineMs }]);
    const reply = await handoffClient(["attach", "--fd", String(CLIENT_FAULT_FD), "--fault-id", String(faultId), "--devices", devices, "--vmm-pid", String(process.pid)], faultFd);
    return { faultId, devId: mock.idevId, reply };
  },
  async raise({ devId, pasid, perm, addr, count }) {
    const p = device(devId);
    for (let i = 0; i < count; i++) {
      p.raised++;
      ctx.triggerIopf({ idevId: devId, pasid, grpid: p.raised, perm, addr: addr + i * PAGE });
    }
    return {};
  },
  handshake: ({ devId, whole }) => handoffClient(["detach", "--fault-id", String(device(devId).faultId), ...(whole ? [] : ["--dev", String(devId)])], null),
  async unplug({ devId }) {
    moveOffFaultQueue(ctx, device(devId).mock);
    return {};
  },
  async "close-queue"({ devId }) {
    const p = device(devId);
    const outcomes = answerAgain(p.faultFd, Array.from({ length: p.raised }, (_, i) => i + 1));
    destroyMock(ctx, ioas, p.mock);
    libc.close(p.faultFd);
    ctx.destroy(p.faultId);
    plugged.delete(devId);
    const refused = outcomes.filter((o) => o === "EINVAL").length;
    const accepted = outcomes.filter((o) => o === "taken").length;
    return { peak: p.raised, refused, accepted, other: outcomes.filter((o) => o !== "EINVAL" && o !== "taken") };
  },
};

serveControl({ input: process.stdin, output: process.stdout }, commands);
process.stdin.on("end", () => process.exit(0));
