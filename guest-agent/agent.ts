// The agent: handlers and the app socket for its whole life, and a loop that
// keeps one guest link open. A virtio-serial port stays open across host
// absence (the link resyncs on each hangup); when it closes for good, or a
// socket connection ends, or the port is not there yet, the loop waits with
// backoff and opens it again.
import type { Capabilities } from "../src/link/negotiation.js";
import type { ResyncTimers } from "../src/link/resync.js";
import type { ByteStream } from "../src/link/transport/byte-stream.js";
import { openCharDevice } from "../src/link/transport/chardev.js";
import { AppServer } from "./app/app-server.js";
import { Registry } from "./app/registry.js";
import { Backoff, sleep } from "../src/link/backoff.js";
import { AgentConfig } from "./config.js";
import { cpuPageSize } from "./handlers/procmem/page-size.js";
import { ProcessTable } from "./handlers/procmem/process-table.js";
import { ProcmemFaults } from "./handlers/procmem/procmem-handler.js";
import { Router } from "./handlers/router.js";
import { Logger } from "./log.js";
import { OpenDevice, PortOpener, portOpener } from "./port/port-opener.js";
import { SessionClient } from "./session/session-client.js";
import { Counters } from "./stats.js";
import { AGENT_SOFTWARE } from "./version.js";

export interface AgentOptions {
  config: AgentConfig;
  log: Logger;
  /** Opens a virtio-serial device; the chardev transport unless a test stands something else in. */
  openDevice?: OpenDevice;
  /** For tests: the link's own knobs. */
  capabilities?: Capabilities;
  resyncTimers?: ResyncTimers;
}

export class Agent {
  private readonly stopping = new AbortController();
  private session: SessionClient | null = null;
  private loop: Promise<void> = Promise.resolve();
  private lastStream: ByteStream | null = null;

  private constructor(
    private readonly options: AgentOptions,
    readonly counters: Counters,
    private readonly router: Router,
    private readonly processes: ProcessTable,
    private readonly app: AppServer | null,
    private readonly opener: PortOpener,
  ) {}

  /** Starts the app socket and the port loop; resolves once the app socket listens. */
  static async start(options: AgentOptions): Promise<Agent> {
    const { config, log } = options;
    const registry = new Registry();
    const processes = new ProcessTable(cpuPageSize(), log);
    const counters = new Counters();
    const router = new Router(config.handlers, registry, new ProcmemFaults(processes, counters, log));
    const app = config.appSocket === null ? null : await AppServer.start(config.appSocket, registry, processes, log);
    const agent = new Agent(options, counters, router, processes, app, portOpener(config.port, options.openDevice ?? openCharDevice));
    agent.loop = agent.run();
    return agent;
  }

  /** The link of the current port, if one is open (for tests and status). */
  get current(): SessionClient | null {
    return this.session;
  }

  /** Says goodbye to the relay, closes the port and the app socket; resolves when all is closed. */
  async stop(message = "the agent is stopping"): Promise<void> {
    if (this.stopping.signal.aborted) return this.loop;
    this.stopping.abort();
    this.session?.stop(message);
    await this.loop;
    await this.app?.close();
    this.processes.closeAll();
    this.options.log.info("stopped", { counters: this.counters.snapshot() });
  }

  /**
   * Waits until the port's fd is closed, so that the process can exit: a
   * read sleeping in the kernel keeps libuv's shutdown waiting for ever. The
   * relay's reply to our goodbye ends that read. False when it did not end
   * within timeoutMs (a relay connected but silent).
   */
  async released(timeoutMs: number): Promise<boolean> {
    const released = this.lastStream?.released;
    if (!released) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const done = await Promise.race([released.then(() => true), timeout]);
    clearTimeout(timer);
    return done;
  }

  private async run(): Promise<void> {
    const { config, log } = this.options;
    const backoff = new Backoff(config.retryMinMs, config.retryMaxMs);
    const signal = this.stopping.signal;
    let lastProblem = "";
    while (!signal.aborted) {
      let problem: string;
      try {
        const stream = await this.opener.open();
        if (stream && signal.aborted) stream.destroy();
        if (stream && !signal.aborted) {
          lastProblem = "";
          if (!(await this.serve(stream))) {
            backoff.reset();
            continue;
          }
          // Another agent took the relay over: taking it straight back would make the two flap.
          problem = "another agent connection took over the relay; backing off before trying again";
        } else {
          problem = `waiting for ${this.opener.what}`;
        }
      } catch (err) {
        problem = `cannot open ${this.opener.what}: ${(err as Error).message}`;
      }
      // Log a problem when it changes, not on every retry.
      if (problem !== lastProblem && !signal.aborted) log.info(problem, { retryMaxMs: config.retryMaxMs });
      lastProblem = problem;
      await sleep(backoff.delay(), signal);
    }
  }

  /** Serves one stream until it closes; true when the relay closed it because another agent took over. */
  private async serve(stream: ByteStream): Promise<boolean> {
    const { config, log } = this.options;
    log.info("port open", { port: stream.description });
    const session = new SessionClient(
      stream,
      this.router,
      {
        software: AGENT_SOFTWARE,
        credits: config.credits,
        defaultBudgetUs: config.defaultBudgetUs,
        deadlineMarginUs: config.deadlineMarginUs,
        ...(this.options.capabilities ? { capabilities: this.options.capabilities } : {}),
        ...(this.options.resyncTimers ? { resyncTimers: this.options.resyncTimers } : {}),
      },
      log,
      this.counters,
    );
    this.session = session;
    this.lastStream = stream;
    session.start();
    const err = await session.done;
    this.session = null;
    log.info("port closed", { port: stream.description, err });
    // A port that opens and closes at once would otherwise spin.
    await sleep(config.retryMinMs, this.stopping.signal);
    return session.replaced;
  }
}
