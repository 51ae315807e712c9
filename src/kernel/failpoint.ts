// Failpoints: named places in the code where a test can make this process
// get a signal at exactly that point rather than only at random ones: SIGKILL
// (the default) to prove that nothing is lost when it dies there, another
// signal to prove how it is handled there. Set
// IOPF_FAILPOINT="name[:N][=SIGNAL]" in the environment of the process under
// test: the Nth time the point is reached (the first by default) the process
// sends itself SIGNAL. Unset, every failpoint is a comparison with undefined.
// The names are listed in docs/architecture.md.
import { constants } from "node:os";

const spec = /^([a-z-]+)(?::(\d+))?(?:=(SIG[A-Z]+))?$/.exec(process.env.IOPF_FAILPOINT ?? "");
const armed = spec?.[1];
let remaining = Number(spec?.[2] ?? 1);
const signal = (spec?.[3] ?? "SIGKILL") as NodeJS.Signals;
if (process.env.IOPF_FAILPOINT && (spec === null || !(signal in constants.signals))) {
  // A crash test whose failpoint never fires would pass without testing anything.
  process.stderr.write(`IOPF_FAILPOINT="${process.env.IOPF_FAILPOINT.slice(0, 100)}": expected name[:N][=SIGNAL], e.g. worker-after-read:2 or relay-starting=SIGTERM\n`);
  process.exit(2);
}

/** Sends this process the armed signal (SIGKILL unless told otherwise) when this point is the armed one and its count is reached. */
export function failpoint(name: string): void {
  if (name !== armed) return;
  if (--remaining > 0) return;
  process.kill(process.pid, signal);
}
