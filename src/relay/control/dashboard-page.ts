// The dashboard served at / : one page, plain HTML and JavaScript, nothing
// loaded from elsewhere (the host may have no network). Figures come from
// /api/status once a second (rates are differences of totals; latency is the
// relay's recent window) and from the live event stream (/api/events) for
// the recent events and the event rate. When the status stops coming, the
// page says since when and greys the last figures rather than show them as
// live. Text from the relay is set with textContent only, never parsed as
// HTML. The script avoids template literals so that it can live in this TS
// string; the answer origins are written into it from their one declaration.
import { ANSWER_ORIGINS } from "../../fault/fault-group.js";

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>iopf-relay</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
  :root { --bg: #f4f5f7; --card: #fff; --ink: #1d2330; --mute: #69707d; --line: #dde0e6; --ok: #1f883d; --bad: #cf222e; --warn: #bf8700; --accent: #2f6fdf; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--ink); }
  header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 16px; padding: 12px 20px; background: #1d2330; color: #fff; }
  header h1 { margin: 0; font-size: 18px; }
  header .sub { color: #aab1bd; font-size: 13px; overflow-wrap: anywhere; }
  #conn { margin-left: auto; font-size: 13px; }
  main { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 14px; padding: 14px 20px; }
  /* A grid item is as wide as its content unless told otherwise: tables and event lines would push the page sideways. */
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; min-width: 0; }
  .scroll { overflow-x: auto; }
  .card h2 { margin: 0 0 8px; font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .05em; color: var(--mute); }
  .big { font-size: 28px; font-weight: 600; font-variant-numeric: tabular-nums; }
  .small { color: var(--mute); font-size: 12px; }
  .wide { grid-column: span 2; }
  .full { grid-column: 1 / -1; }
  @media (max-width: 1000px) { main { grid-template-columns: repeat(2, minmax(0, 1fr)); } .wide { grid-column: 1 / -1; } }
  @media (max-width: 560px) { main { grid-template-columns: minmax(0, 1fr); padding: 10px; } }
  .state-up { color: var(--ok); } .state-waiting { color: var(--bad); } .state-handshake { color: var(--warn); }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align: right; padding: 3px 6px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
  th { font-size: 12px; color: var(--mute); font-weight: 600; }
  .bar { height: 10px; background: var(--accent); border-radius: 2px; min-width: 1px; }
  #hist { display: flex; align-items: flex-end; gap: 3px; height: 150px; padding-top: 6px; }
  #hist .col { flex: 1; min-width: 0; display: flex; flex-direction: column; justify-content: flex-end; align-items: center; height: 100%; }
  #hist .fill { width: 100%; background: var(--accent); border-radius: 2px 2px 0 0; min-height: 1px; }
  #hist .lbl, #hist .n { font-size: 10px; white-space: nowrap; overflow: hidden; max-width: 100%; }
  #hist .lbl { color: var(--mute); margin-top: 3px; }
  #hist .n { color: var(--ink); }
  #answerparts { display: grid; grid-template-columns: repeat(auto-fill, minmax(112px, 1fr)); gap: 0 12px; margin: 4px 0; font-size: 11px; line-height: 1.35; font-variant-numeric: tabular-nums; }
  #answerparts div { display: flex; justify-content: space-between; gap: 6px; white-space: nowrap; }
  #answerparts .o { color: var(--mute); overflow: hidden; text-overflow: ellipsis; }
  #answerparts .zero { opacity: .45; }
  .success { color: var(--ok); } .invalid { color: var(--warn); }
  #gone { display: none; margin: 14px 20px 0; padding: 10px 14px; border-radius: 8px; background: #fff4d6; border: 1px solid var(--warn); color: #6b4b00; }
  body.gone #gone { display: block; }
  /* The last figures stay for reference, but nothing may look live. */
  body.gone main { filter: grayscale(1); opacity: .6; }
  body.gone main * { color: var(--mute) !important; }
  #events { font: 12px/1.5 ui-monospace, monospace; max-height: 260px; overflow: hidden; }
  #events div { white-space: pre; overflow: hidden; text-overflow: ellipsis; border-bottom: 1px dotted var(--line); }
  .k-expired, .k-dropped, .k-session-down { color: var(--bad); } .k-session-up { color: var(--ok); } .k-answered { color: var(--ok); }
  .k-answered.c-invalid { color: var(--warn); }
  #flapping { color: var(--bad); font-weight: 600; }
  svg { width: 100%; height: 60px; }
</style>
</head>
<body>
<header><h1>iopf-relay</h1><span class="sub" id="software">connecting…</span><span id="conn">○ offline</span></header>
<div id="gone" role="status"></div>
<main>
  <div class="card"><h2>Session</h2><div class="big" id="session">–</div><div class="small" id="agent"></div><div class="small" id="flapping" hidden></div></div>
  <div class="card"><h2>Groups in flight</h2><div class="big" id="inflight">–</div><div class="small" id="queued"></div></div>
  <div class="card"><h2>Groups per second</h2><div class="big" id="rate">–</div><svg id="spark" viewBox="0 0 120 60" preserveAspectRatio="none"><polygon id="sparkarea" fill="#2f6fdf22" points=""/><polyline id="sparkline" fill="none" stroke="#2f6fdf" stroke-width="1.5" vector-effect="non-scaling-stroke" points=""/></svg><div class="small">last 60 s</div></div>
  <div class="card"><h2>Answers <span class="small" style="text-transform:none;font-weight:400">by origin: success / invalid</span></h2><div class="big" id="answered">–</div><div id="answerparts"></div><div class="small" id="answerextra"></div></div>
  <div class="card wide"><h2>Per device</h2><div class="scroll"><table><thead><tr><th>dev</th><th>name</th><th>groups/s</th><th></th><th>success</th><th>invalid</th><th>expired</th><th>mean latency</th></tr></thead><tbody id="devices"></tbody></table></div></div>
  <div class="card wide"><h2>Answer latency <span id="pcts" style="text-transform:none;font-weight:400"></span></h2><div id="hist"></div><div class="small">Each bar: the answers of that latency or less, and more than the bar before.</div></div>
  <div class="card full"><h2>Recent events <span id="evrate" style="text-transform:none;font-weight:400"></span></h2><div id="events"></div></div>
</main>
<script src="/dashboard.js"></script>
</body>
</html>
`;

export const DASHBOARD_JS = String.raw`"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var ORIGINS = ${JSON.stringify(ANSWER_ORIGINS)};
  var prev = null;
  var history = [];
  var eventsSeen = 0, eventsAtLastTick = 0, lost = 0;
  var MAX_EVENTS = 40;
  var openedAt = Date.now(), lastOk = null;

  function fmt(n) { return n >= 1e6 ? (n / 1e6).toFixed(1) + "M" : n >= 1e4 ? (n / 1e3).toFixed(1) + "k" : String(Math.round(n)); }
  function us(n) { return n >= 1e6 ? (n / 1e6).toFixed(n % 1e6 ? 1 : 0) + " s" : n >= 1000 ? (n / 1000).toFixed(n >= 10000 ? 0 : 1) + " ms" : n + " µs"; }
  function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }
  function bound(n) { return n >= 1e6 ? n / 1e6 + "s" : n >= 1000 ? n / 1000 + "ms" : n + "µs"; }
  function hms(t) { return new Date(t).toTimeString().slice(0, 8); }

  // No status: say since when, and grey what is shown (the body's "gone" class).
  function markGone() {
    var since = lastOk === null ? openedAt : lastOk;
    document.body.classList.add("gone");
    $("gone").textContent = "The relay is not answering since " + hms(since) + " (" + Math.round((Date.now() - since) / 1000) + " s)" +
      (lastOk === null ? ": no status since this page opened." : ": the figures below are the last it sent, greyed.");
    $("conn").textContent = "○ offline since " + hms(since);
  }

  function render(s) {
    lastOk = Date.now();
    document.body.classList.remove("gone");
    $("conn").textContent = "● live";
    var dt = prev ? (s.now - prev.now) / 1000 : 0;
    $("software").textContent = s.software + " · " + s.viommu + " · " + s.sources.join(", ") + " · up " + Math.round(s.uptimeS) + " s";
    var st = $("session");
    st.textContent = s.session.state;
    st.className = "big state-" + s.session.state;
    $("agent").textContent = s.session.agent ? s.session.agent + " · epoch " + s.session.epoch + " · window " + s.creditWindow
      : [s.session.lastDownReason ? "last down: " + s.session.lastDownReason : "",
        s.session.lastAgentRefusal ? "the agent refused the offer: " + s.session.lastAgentRefusal.reason : ""].filter(Boolean).join(" · ") || "no agent has connected yet";
    var flap = $("flapping");
    flap.hidden = !s.session.flapping;
    flap.textContent = s.session.flapping ? "Agents keep taking the session from each other (" + s.session.takeovers + " takeovers since start): are two agents using this socket?" : "";
    $("inflight").textContent = fmt(s.inFlight);
    $("queued").textContent = s.queued + " waiting for credit";
    var c = s.counters;
    $("answered").textContent = fmt(c.answered);
    renderOrigins(c.answers);
    $("answerextra").textContent = "guest answers dropped " + fmt(Object.values(c.dropped).reduce(function (a, b) { return a + b; }, 0)) +
      " · refused by the source " + fmt(c.refused);
    if (prev && dt > 0) {
      var rate = (c.groups - prev.counters.groups) / dt;
      $("rate").textContent = fmt(rate);
      history.push(rate);
      if (history.length > 60) history.shift();
      // Newest at the right edge, 60 slots across, zero at the bottom.
      var max = Math.max.apply(null, history.concat([1])) * 1.1;
      var pts = history.map(function (v, i) { return (120 - (history.length - 1 - i) * (120 / 59)).toFixed(1) + "," + (60 - (v / max) * 56).toFixed(1); });
      $("sparkline").setAttribute("points", pts.join(" "));
      $("sparkarea").setAttribute("points", pts.length ? pts[0].split(",")[0] + ",60 " + pts.join(" ") + " 120,60" : "");
    }
    renderDevices(s, dt);
    renderHistogram(s.latencyUs);
    $("evrate").textContent = dt > 0 ? "· " + fmt((eventsSeen - eventsAtLastTick) / dt) + " events/s" + (lost ? " · " + fmt(lost) + " lost (slow viewer)" : "") : "";
    eventsAtLastTick = eventsSeen;
    prev = s;
  }

  // Every origin, in its declared order, zero or not: an origin that starts counting is news.
  function renderOrigins(answers) {
    var box = $("answerparts");
    box.textContent = "";
    ORIGINS.forEach(function (o) {
      var a = answers[o] || { success: 0, invalid: 0 };
      var row = el("div", undefined, a.success + a.invalid === 0 ? "zero" : "");
      row.setAttribute("data-origin", o);
      row.appendChild(el("span", o, "o"));
      var n = el("span");
      n.appendChild(el("span", fmt(a.success), "success"));
      n.appendChild(document.createTextNode(" / "));
      n.appendChild(el("span", fmt(a.invalid), "invalid"));
      row.appendChild(n);
      box.appendChild(row);
    });
  }

  function renderDevices(s, dt) {
    var before = {};
    if (prev) prev.devices.forEach(function (d) { before[d.devId] = d; });
    var rates = s.devices.map(function (d) { var p = before[d.devId]; return p && dt > 0 ? (d.groups - p.groups) / dt : 0; });
    // Mean latency of the answers since the last poll, not since start.
    var means = s.devices.map(function (d) {
      var p = before[d.devId];
      if (!p) return "–";
      var n = d.success + d.invalid + d.expired - (p.success + p.invalid + p.expired);
      return n > 0 ? us(Math.round((d.latencySumUs - p.latencySumUs) / n)) : "–";
    });
    var max = Math.max.apply(null, rates.concat([1]));
    var body = $("devices");
    body.textContent = "";
    s.devices.forEach(function (d, i) {
      var tr = el("tr");
      tr.appendChild(el("td", String(d.devId)));
      tr.appendChild(el("td", d.name));
      tr.appendChild(el("td", fmt(rates[i])));
      var barCell = el("td"); barCell.style.width = "30%";
      var bar = el("div", undefined, "bar"); bar.style.width = (100 * rates[i] / max).toFixed(1) + "%";
      barCell.appendChild(bar); tr.appendChild(barCell);
      tr.appendChild(el("td", fmt(d.success)));
      tr.appendChild(el("td", fmt(d.invalid)));
      tr.appendChild(el("td", fmt(d.expired)));
      tr.appendChild(el("td", means[i]));
      body.appendChild(tr);
    });
  }

  function renderHistogram(h) {
    $("pcts").textContent = "· last " + h.windowS + " s" + (h.count ? " · p50 " + us(h.p50) + " · p90 " + us(h.p90) + " · p99 " + us(h.p99) + " · max " + us(h.max) : " · no answers");
    var cols = h.buckets.concat([{ leUs: -1, count: h.over }]);
    var max = Math.max.apply(null, cols.map(function (b) { return b.count; }).concat([1]));
    var box = $("hist");
    box.textContent = "";
    cols.forEach(function (b) {
      var col = el("div", undefined, "col");
      col.appendChild(el("div", b.count ? fmt(b.count) : "", "n"));
      // The tallest bar leaves room in its column for its count above and its bound below.
      var fill = el("div", undefined, "fill"); fill.style.height = "calc((100% - 30px) * " + (b.count / max).toFixed(3) + ")";
      col.appendChild(fill);
      col.appendChild(el("div", b.leUs < 0 ? ">" + bound(h.buckets[h.buckets.length - 1].leUs) : bound(b.leUs), "lbl"));
      box.appendChild(col);
    });
  }

  function describe(e) {
    var t = new Date(e.t).toISOString().slice(11, 23);
    var who = e.dev !== undefined ? " dev " + e.dev + (e.pasid !== undefined ? " pasid " + e.pasid : "") : "";
    switch (e.kind) {
      case "group-read": return t + " group-read  " + who + " pages " + e.pages + " cookie " + e.cookie;
      case "answered": case "expired": return t + " " + e.kind + (e.kind === "answered" ? "    " : "     ") + who + " " + e.code + " by " + e.origin + " in " + us(e.latencyUs);
      case "sent": return t + " sent         " + e.count + " to epoch " + e.epoch;
      case "dropped": return t + " dropped      tag " + e.tag + ": " + e.reason;
      case "session-up": return t + " session-up   epoch " + e.epoch + " " + e.agent;
      case "session-down": return t + " session-down epoch " + e.epoch + ": " + e.reason;
    }
    return t + " " + e.kind;
  }

  function addEvents(list) {
    eventsSeen += list.length;
    var box = $("events");
    // Only the newest few are drawn: a busy relay sends thousands a second.
    list.slice(-MAX_EVENTS).forEach(function (e) { box.insertBefore(el("div", describe(e), "k-" + e.kind + (e.code === "invalid" ? " c-invalid" : "")), box.firstChild); });
    while (box.childNodes.length > MAX_EVENTS) box.removeChild(box.lastChild);
  }

  function connect() {
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/events");
    ws.onopen = function () { ws.send(JSON.stringify({ type: "subscribe" })); };
    ws.onmessage = function (m) {
      var msg = JSON.parse(m.data);
      if (msg.type === "events") addEvents(msg.events);
      else if (msg.type === "lost") lost += msg.count;
    };
    ws.onclose = function () { setTimeout(connect, 2000); };
  }

  function poll() {
    fetch("/api/status").then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); }).then(render, markGone)
      .finally(function () { setTimeout(poll, 1000); });
  }

  connect();
  poll();
})();
`;
