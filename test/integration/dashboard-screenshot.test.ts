// The dashboard in Debian's headless Chromium, driven by playwright-core
// (no browser download): a relay on the kernel emulator with a local agent,
// the page opened at the control server's /, and a wait until the live
// figures move. The screenshot is saved under build/test-output/ for a
// person to look at; it is not committed.
import test from "ava";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startAgent, startRelay, waitStatus } from "./control-harness.js";

const CHROMIUM = "/usr/bin/chromium";
// The page's own globals, for the functions that run in it (this project compiles without the DOM's types).
declare const document: { getElementById(id: string): { textContent: string } | null; querySelectorAll(s: string): { length: number } };
declare const window: { firstAnswered?: number };
const OUTPUT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "test-output");

interface Page {
  goto(url: string): Promise<unknown>;
  textContent(selector: string): Promise<string | null>;
  waitForFunction<A>(f: (arg: A) => boolean, arg: A, o?: { timeout: number }): Promise<unknown>;
  screenshot(o: { path: string; fullPage: boolean }): Promise<unknown>;
  on(event: "pageerror" | "console", f: (x: { message?: string; type?: () => string; text?: () => string }) => void): void;
}
interface Browser {
  newPage(o: { viewport: { width: number; height: number } }): Promise<Page>;
  close(): Promise<void>;
}

async function launch(): Promise<Browser> {
  let chromium: { launch(o: object): Promise<Browser> };
  try {
    // Imported by name at run time: the dashboard test is the only user of playwright-core.
    const name = "playwright-core";
    ({ chromium } = (await import(name)) as { chromium: typeof chromium });
  } catch (err) {
    throw new Error(`the dashboard test needs the npm package playwright-core (a devDependency; node scripts/setup.mjs installs it): ${(err as Error).message}`);
  }
  if (!existsSync(CHROMIUM)) throw new Error(`the dashboard test needs Debian's chromium at ${CHROMIUM}: apt-get install -y chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}

test("the dashboard shows live figures from a relay on the kernel emulator", async (t) => {
  const browser = await launch();
  t.teardown(() => browser.close());
  const relay = await startRelay(t, { source: "emulator", rate: 800 });
  startAgent(t, relay);
  await waitStatus(relay.control, (s) => s.session.state === "up", "the agent's session");

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(e.message ?? String(e)));
  page.on("console", (m) => {
    if (m.type?.() === "error") problems.push(m.text?.() ?? "");
  });
  await page.goto(`http://${relay.control.slice("tcp:".length)}/`);

  // Functions run in the page (its CSP forbids evaluating strings). Figures show as 950, 12.3k or 1.2M.
  const wait = <A>(f: (a: A) => boolean, arg: A): Promise<unknown> => page.waitForFunction(f, arg, { timeout: 10_000 });
  // Live: the session is up, the rate is above zero, events arrive, every device has a row, the answers count up.
  await wait((id) => document.getElementById(id)?.textContent === "up", "session");
  await wait((id) => Number(document.getElementById(id)?.textContent.replace("k", "e3").replace("M", "e6")) > 100, "rate");
  await wait((sel) => document.querySelectorAll(sel).length >= 20, "#events div");
  await wait((sel) => document.querySelectorAll(sel).length === 8, "#devices tr");
  await wait((id) => {
    const n = Number(document.getElementById(id)?.textContent.replace("k", "e3").replace("M", "e6"));
    window.firstAnswered ??= n;
    return n > window.firstAnswered;
  }, "answered");
  // A few seconds of history for the sparkline and the histogram.
  await new Promise((r) => setTimeout(r, 3000));

  t.regex((await page.textContent("#conn")) ?? "", /live/);
  t.regex((await page.textContent("#pcts")) ?? "", /p50 .* p99 /);
  t.regex((await page.textContent("#events")) ?? "", /group-read +dev \d pasid 1/);
  mkdirSync(OUTPUT, { recursive: true });
  const shot = join(OUTPUT, "dashboard.png");
  await page.screenshot({ path: shot, fullPage: true });
  t.log(`screenshot: ${shot}`);
  t.deepEqual(problems, [], "no script errors in the page");
});
