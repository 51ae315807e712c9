// What waking a node process costs on this machine, whatever it then does:
// the bench sends one 40-byte message at a time at a fixed rate to an echo
// process (node-echo.ts) over a Unix socket and reads the echo; the echo's
// CPU and sleeps per message are the floor under the agent's and the
// relay's cost per wake-up at low rates.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Child } from "./child.js";
import { GroupCost, groupCost } from "./measure.js";
import { NODE_ECHO } from "./paths.js";
import { allThreads, threadCpu } from "./proc-stat.js";

const CONNECT_TIMEOUT_MS = 10_000;

export async function wakeUpFloor(ratePerSec: number, durationMs: number): Promise<GroupCost & { messages: number }> {
  const dir = mkdtempSync(join(tmpdir(), "iopf-bench-echo-"));
  const path = join(dir, "echo.sock");
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const accepted = new Promise<Socket>((resolve, reject) => {
    server.once("connection", resolve);
    setTimeout(() => reject(new Error(`node-echo did not connect to ${path} within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS).unref();
  });
  const echo = new Child("node-echo", process.execPath, [NODE_ECHO, "--connect", path]);
  try {
    const socket = await accepted;
    let echoed = 0;
    socket.on("data", (chunk) => (echoed += chunk.length));
    const message = Buffer.alloc(40);
    const t0 = threadCpu(echo.pid);
    const sent0 = echoed;
    // One message per tick of the interval: never two in one wake-up of the echo.
    const perTick = Math.max(1, Math.round(ratePerSec / 1000));
    const timer = setInterval(() => {
      for (let i = 0; i < perTick; i++) socket.write(message);
    }, 1);
    await new Promise((r) => setTimeout(r, durationMs));
    clearInterval(timer);
    await new Promise((r) => setTimeout(r, 50));
    const t1 = threadCpu(echo.pid);
    const messages = (echoed - sent0) / message.length;
    socket.destroy();
    return { messages, ...groupCost(allThreads(t0), allThreads(t1), messages) };
  } finally {
    await echo.stop();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
