// Guest side of e2e-guest.test.ts: the commands the host test sends over the
// control port. The guest holds no scenario logic: the relay and the fault
// source are on the host, so the host decides what happens when, and the
// guest only does what needs to be done inside the VM.
import { setTimeout as sleep } from "node:timers/promises";
import type { CommandTable } from "./control-channel.js";
import { pagesPresent, processImage, startAgent, startGuestApp, type GuestProcess } from "./guest-processes.js";
import { register, type Registration } from "./guest-registration.js";

export interface AppInfo {
  pid: number;
  rw: number;
  rwPages: number;
  ro: number;
  roPages: number;
}

export type GuestCommands = {
  /**
   * Starts the agent (a running one must have been stopped first): the
   * bundle under node, or with exe the single executable. Says what the
   * process runs: its /proc/PID/exe, whether the guest's node is mapped into
   * it, whether its PATH leads to node.
   */
  "agent.start": { args: { config: object; exe?: boolean }; result: { pid: number; exe: string; nodeMapped: boolean; pathHasNode: boolean } };
  /**
   * Sends a signal to the agent; with waitMs, resolves once it has exited, or
   * SIGKILLs it after waitMs (so that later scenarios get a port no process
   * holds) and says so in `forced`.
   */
  "agent.signal": { args: { signal: NodeJS.Signals; waitMs?: number }; result: { exit: string | null; forced: boolean } };
  "app.start": { args: Record<string, never>; result: AppInfo };
  /** Registers with the running agent; registrations end with the agent. */
  register: { args: Registration; result: Record<string, never> };
  pagemap: { args: { pid: number; addr: number; pages: number }; result: boolean[] };
};

export function guestCommands(): CommandTable<GuestCommands> {
  let agent: GuestProcess | null = null;
  return {
    "agent.start": async ({ config, exe }) => {
      if (agent) throw new Error(`agent.start: the agent (pid ${agent.pid}) is still running; send agent.signal with waitMs first`);
      agent = await startAgent(config, "/tmp/e2e-agent.json", exe ? "agent-exe" : "agent", exe === true);
      const started = agent;
      void started.exited.then(() => { if (agent === started) agent = null; });
      return { pid: started.pid, ...processImage(started.pid) };
    },
    "agent.signal": async ({ signal, waitMs }) => {
      const running = agent;
      if (!running) throw new Error(`agent.signal ${signal}: no agent is running; send agent.start first`);
      running.child.kill(signal);
      if (waitMs === undefined) return { exit: null, forced: false };
      const timedOut = await Promise.race([running.exited.then(() => false), sleep(waitMs).then(() => true)]);
      if (timedOut) running.child.kill("SIGKILL");
      return { exit: await running.exited, forced: timedOut };
    },
    "app.start": async () => {
      const app = await startGuestApp();
      return { pid: app.pid, rw: app.rw, rwPages: app.rwPages, ro: app.ro, roPages: app.roPages };
    },
    register: async (reg) => {
      // The connection stays open (libuv holds it) as long as the agent does.
      await register(reg);
      return {};
    },
    pagemap: async ({ pid, addr, pages }) => pagesPresent(pid, addr, pages),
  };
}
