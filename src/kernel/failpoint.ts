// Failpoints: named places in the code where a crash test can make this
// process die at once (SIGKILL), to prove that nothing is lost when it dies
// at exactly that point rather than only at random ones. Set
// IOPF_FAILPOINT="name" (or "name:N", the Nth time the point is reached) in
// the environment of the process under test; unset, every failpoint is a
// comparison with undefined. The names are listed in docs/architecture.md.
const spec = /^([a-z-]+)(?::(\d+))?$/.exec(process.env.IOPF_FAILPOINT ?? "");
const armed = spec?.[1];
let remaining = Number(spec?.[2] ?? 1);

/** Kills the process (SIGKILL, no cleanup) when this point is the armed one and its count is reached. */
export function failpoint(name: string): void {
  if (name !== armed) return;
  if (--remaining > 0) return;
  process.kill(process.pid, "SIGKILL");
}
