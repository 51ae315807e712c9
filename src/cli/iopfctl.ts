#!/usr/bin/env node
// iopfctl: watches and pokes a running iopf-relay through its control
// server (iopf-relay --control ADDR): status, a live trace, per-device
// rates, synthetic fault injection, and recording and replaying traffic.
import { ControlAddressError } from "../relay/control/control-address.js";
import { ControlClient, CtlError } from "../ctl/control-client.js";
import { CtlUsageError, parseCtlCli, USAGE } from "../ctl/ctl-options.js";
import { injectCommand } from "../ctl/inject-command.js";
import { recordCommand } from "../ctl/record-command.js";
import { replayCommand } from "../ctl/replay-command.js";
import { handoffCommand } from "../ctl/handoff-command.js";
import { statusCommand } from "../ctl/status-command.js";
import { topCommand } from "../ctl/top-command.js";
import { traceCommand } from "../ctl/trace-command.js";
import { VERSION } from "../relay/version.js";

const out = (s: string): void => void process.stdout.write(s);
const err = (s: string): void => void process.stderr.write(s);

// A reader that has read enough (`iopfctl trace | head`) closes the pipe:
// that is the pipeline's normal end, so leave quietly and successfully.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
  err(`iopfctl: cannot write to the standard output: ${e.message}\n`);
  process.exit(1);
});

async function main(argv: string[]): Promise<number> {
  const { control, command: c } = parseCtlCli(argv, process.env);
  if (c.cmd === "help") {
    out(USAGE + "\n");
    return 0;
  }
  if (c.cmd === "version") {
    out(VERSION + "\n");
    return 0;
  }
  if (c.cmd === "attach" || c.cmd === "detach") return handoffCommand(c, out, err);
  const client = new ControlClient(control);
  switch (c.cmd) {
    case "status":
      await statusCommand(client, c.json, out);
      return 0;
    case "trace":
      await traceCommand(client, c, out, err);
      return 0;
    case "top":
      await topCommand(client, { intervalMs: c.intervalMs, iterations: c.iterations, ansi: !c.plain && process.stdout.isTTY === true }, out);
      return 0;
    case "inject":
      await injectCommand(client, c, out);
      return 0;
    case "record": {
      const r = await recordCommand(client, c, err);
      err(`iopfctl: recorded ${r.events} events into ${c.file}${r.lost ? `; ${r.lost} lost (the recorder fell behind)` : ""}\n`);
      return 0;
    }
    case "replay":
      await replayCommand(client, c, out, err);
      return 0;
  }
}

main(process.argv.slice(2)).then(
  // Exit at once: a closed WebSocket or a pending timer must not hold the process.
  (code) => process.exit(code),
  (e: Error) => {
    // One line for what the user can fix; a stack, once, for anything else.
    const usage = e instanceof CtlUsageError || e instanceof ControlAddressError;
    if (usage) err(`iopfctl: ${e.message}; run iopfctl --help for the commands\n`);
    else if (e instanceof CtlError) err(`iopfctl: ${e.message}\n`);
    else err(`iopfctl: unexpected failure: ${e.stack ?? e.message}\n`);
    process.exit(usage ? 2 : 1);
  },
);
