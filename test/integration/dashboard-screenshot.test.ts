// The dashboard in Debian's headless Chromium, driven by playwright-core
// (no browser download), in the three states an operator meets: a healthy
// relay with its agent, a relay with no agent, and a relay that is gone.
// Each is checked by what the page holds (text, classes, computed colours,
// no horizontal overflow at 800 px) and saved as a screenshot for a person
// to look at: under build/test-output/, or $IOPF_SCREENSHOTS (not committed).
import test, { type ExecutionContext } from "ava";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ANSWER_ORIGINS } from "../../src/fault/fault-group.js";
import { RECENT_WINDOW_S } from "../../src/relay/latency-histogram.js";
import { RelayProc, startAgent, startRelay, waitStatus } from "./control-harness.js";
import { reconnectingAgent } from "../support/reconnecting-agent.js";

const CHROMIUM = "/usr/bin/chromium";
// The page's own globals, for the functions that run in it (this project compiles without the DOM's types).
interface Element {
  textContent: string;
  className: string;
  hidden: boolean;
  classList: { contains(c: string): boolean };
  getBoundingClientRect(): { right: number; width: number };
  querySelectorAll(s: string): ArrayLike<Element>;
  getAttribute(name: string): string | null;
  parentElement: Element | null;
  appendChild(e: Element): void;
  remove(): void;
}
declare const document: {
  createElement(tag: string): Element;
  getElementById(id: string): Element | null;
  querySelector(s: string): Element | null;
  querySelectorAll(s: string): ArrayLike<Element>;
  body: Element;
  documentElement: { scrollWidth: number; clientWidth: number };
};
declare function getComputedStyle(e: Element): { color: string; filter: string; opacity: string };
declare const window: { firstAnswered?: number; innerWidth: number };

const OUTPUT = process.env.IOPF_SCREENSHOTS ?? join(dirname(fileURLToPath(import.meta.url)), "..", "..", "test-output");
/** The page's colours (its :root variables), as getComputedStyle reports them. */
const GREEN = "rgb(31, 136, 61)";
const RED = "rgb(207, 34, 46)";
const AMBER = "rgb(191, 135, 0)";

interface Page {
  goto(url: string): Promise<unknown>;
  textContent(selector: string): Promise<string | null>;
  waitForFunction<A>(f: (arg: A) => boolean, arg: A, o?: { timeout: number }): Promise<unknown>;
  evaluate<A, R>(f: (arg: A) => R, arg: A): Promise<R>;
  setViewportSize(size: { width: number; height: number }): Promise<void>;
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

type T = ExecutionContext;

/** The page on the relay's dashboard, with its script errors collected. */
async function open(t: T, relay: RelayProc, width = 1280): Promise<{ page: Page; problems: string[]; wait: <A>(f: (a: A) => boolean, arg: A) => Promise<unknown> }> {
  const browser = await launch();
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(e.message ?? String(e)));
  page.on("console", (m) => {
    // A failed poll of a relay that is gone is the browser's own console line, not the page's error.
    if (m.type?.() === "error" && !/Failed to load resource|ERR_CONNECTION_REFUSED|WebSocket connection/.test(m.text?.() ?? "")) problems.push(m.text?.() ?? "");
  });
  await page.goto(`http://${relay.control.slice("tcp:".length)}/`);
  // Functions run in the page (its CSP forbids evaluating strings).
  const wait = <A>(f: (a: A) => boolean, arg: A): Promise<unknown> => page.waitForFunction(f, arg, { timeout: 15_000 });
  return { page, problems, wait };
}

/** Saves the page at 1280 and 800 px wide and checks that at 800 nothing sticks out sideways. */
async function shoot(t: T, page: Page, name: string): Promise<void> {
  mkdirSync(OUTPUT, { recursive: true });
  for (const width of [1280, 800]) {
    await page.setViewportSize({ width, height: 900 });
    const overflow = await page.evaluate(() => {
      const out: string[] = [];
      const doc = document.documentElement;
      if (doc.scrollWidth > doc.clientWidth) out.push(`page ${doc.scrollWidth} > ${doc.clientWidth}`);
      const cards = document.querySelectorAll(".card");
      for (let i = 0; i < cards.length; i++) {
        const r = cards[i]!.getBoundingClientRect();
        if (r.right > doc.clientWidth) out.push(`card ${i} ends at ${Math.round(r.right)}`);
      }
      return out;
    }, null);
    t.deepEqual(overflow, [], `nothing overflows at ${width} px`);
    const shot = join(OUTPUT, `dashboard-${name}-${width}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    t.log(`screenshot: ${shot}`);
  }
}

test("a healthy relay: live figures, every answer origin, INVALID not drawn as success, recent latency", async (t) => {
  const relay = await startRelay(t, { source: "emulator", rate: 300 });
  // Device 7 (endpoint 0x17 in the built-in map) is answered INVALID, so both codes show.
  startAgent(t, relay, 256, [{ endpoint: 0x17, handler: "invalid" }]);
  await waitStatus(relay.control, (s) => s.session.state === "up", "the agent's session");
  const { page, problems, wait } = await open(t, relay);

  // Figures show as 950, 12.3k or 1.2M.
  await wait((id) => document.getElementById(id)?.textContent === "up", "session");
  await wait((sel) => document.querySelectorAll(sel).length >= 20, "#events div");
  await wait((sel) => document.querySelectorAll(sel).length === 8, "#devices tr");
  await wait((sel) => Array.from(document.querySelectorAll(sel)).some((e) => / invalid by guest /.test(e.textContent)), "#events .k-answered.c-invalid");
  await wait((id) => Number(document.getElementById(id)?.textContent.replace("k", "e3").replace("M", "e6")) > 100, "rate");

  t.regex((await page.textContent("#conn")) ?? "", /live/);
  t.regex((await page.textContent("#pcts")) ?? "", new RegExp(`last ${RECENT_WINDOW_S} s .*p50 .* p99 `));
  // The list holds the newest 40 events only: wait for a group-read among them rather than expect one now.
  await wait((re) => Array.from(document.querySelectorAll("#events .k-group-read")).some((e) => new RegExp(re).test(e.textContent)), "group-read +dev \\d pasid 1 pages 1 cookie \\d+");
  // One evaluation, so the events list (replaced as events arrive) is read at one instant.
  const page1 = await page.evaluate(() => {
    // The colour an event line of these classes gets, from the page's own style sheet.
    const colour = (cls: string): string => {
      const probe = document.createElement("div");
      probe.className = cls;
      document.getElementById("events")!.parentElement!.appendChild(probe);
      const c = getComputedStyle(probe).color;
      probe.remove();
      return c;
    };
    return {
      session: getComputedStyle(document.getElementById("session")!).color,
      origins: Array.from(document.querySelectorAll("#answerparts [data-origin]"), (e) => e.getAttribute("data-origin")),
      success: colour("k-answered"),
      invalid: colour("k-answered c-invalid"),
      invalidWithoutClass: Array.from(document.querySelectorAll("#events .k-answered:not(.c-invalid)")).filter((e) => / invalid by /.test(e.textContent)).length,
      gone: document.body.classList.contains("gone"),
    };
  }, null);
  t.is(page1.session, GREEN);
  t.deepEqual(page1.origins, [...ANSWER_ORIGINS], "the Answers card lists every origin");
  t.is(page1.success, GREEN);
  t.is(page1.invalid, AMBER, "an INVALID answer is not drawn green");
  t.is(page1.invalidWithoutClass, 0, "every INVALID answer line has the class that colours it");
  t.false(page1.gone);
  await shoot(t, page, "healthy");
  t.deepEqual(problems, [], "no script errors in the page");
});

test("no agent: the session is waiting, in red, and the groups answered for want of one show as session-lost", async (t) => {
  const relay = await startRelay(t, { source: "synthetic", rate: 200, config: { viommu: "virtio-iommu", devices: [{ devId: 1, endpointId: 8, name: "nic0" }], limits: { sessionGraceMs: 200 } } });
  const { page, problems, wait } = await open(t, relay);
  await wait((id) => document.getElementById(id)?.textContent === "waiting", "session");
  await wait((sel) => Number(document.querySelector(sel)?.textContent.replace("k", "e3").replace("M", "e6")) > 0, '#answerparts [data-origin="session-lost"] .invalid');
  const state = await page.evaluate(() => ({
    session: getComputedStyle(document.getElementById("session")!).color,
    agent: document.getElementById("agent")!.textContent,
    guest: document.querySelector('#answerparts [data-origin="guest"] .invalid')!.textContent,
  }), null);
  t.is(state.session, RED);
  t.regex(state.agent, /no agent has connected yet/);
  t.is(state.guest, "0");
  await shoot(t, page, "no-agent");
  t.deepEqual(problems, [], "no script errors in the page");
});

test("the relay gone: the panels grey out and say since when, instead of showing the last rates as live", async (t) => {
  const relay = await startRelay(t, { source: "emulator", rate: 400 });
  startAgent(t, relay);
  await waitStatus(relay.control, (s) => s.session.state === "up", "the agent's session");
  const { page, problems, wait } = await open(t, relay);
  await wait((id) => Number(document.getElementById(id)?.textContent.replace("k", "e3").replace("M", "e6")) > 100, "rate");
  relay.child.kill("SIGKILL");
  await relay.exited;
  await wait(() => document.body.classList.contains("gone"), null);
  const state = await page.evaluate(() => ({
    banner: document.getElementById("gone")!.textContent,
    conn: document.getElementById("conn")!.textContent,
    filter: getComputedStyle(document.querySelector("main")!).filter,
    session: getComputedStyle(document.getElementById("session")!).color,
  }), null);
  t.regex(state.banner, /^The relay is not answering since \d\d:\d\d:\d\d/);
  t.regex(state.conn, /offline/);
  t.regex(state.filter, /grayscale\(1\)/, "the panels are greyed");
  t.not(state.session, GREEN, "the last session state is not shown as live");
  await shoot(t, page, "relay-gone");
  t.deepEqual(problems, [], "no script errors in the page");
});

test("two agents taking the session from each other: the session card says so, in red", async (t) => {
  const relay = await startRelay(t, { source: "synthetic", config: { viommu: "virtio-iommu", devices: [{ devId: 1, endpointId: 8, name: "nic0" }] } });
  const { page, problems, wait } = await open(t, relay);
  // Each new connection that completes a handshake takes the session over; the replaced ones back off and come back.
  for (let i = 0; i < 4; i++) {
    const agent = reconnectingAgent(relay.socketPath, 0);
    t.teardown(() => agent.stop());
    await waitStatus(relay.control, (s) => s.session.takeovers >= i, `takeover ${i}`);
  }
  await waitStatus(relay.control, (s) => s.session.flapping, "the flapping");
  await wait((id) => document.getElementById(id)?.hidden === false, "flapping");
  const state = await page.evaluate(() => ({
    text: document.getElementById("flapping")!.textContent,
    color: getComputedStyle(document.getElementById("flapping")!).color,
  }), null);
  t.regex(state.text ?? "", /^Agents keep taking the session from each other \(\d+ takeovers since start\): are two agents using this socket\?$/);
  t.is(state.color, RED);
  await shoot(t, page, "flapping");
  t.deepEqual(problems, [], "no script errors in the page");
});
