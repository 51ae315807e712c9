// The dashboard served at / : one page, plain HTML and JavaScript, nothing
// loaded from elsewhere (the host may have no network). Figures come from
// /api/status once a second (rates are differences of totals) and from the
// live event stream (/api/events) for the recent events and the event rate.
// Text from the relay is set with textContent only, never parsed as HTML.
// The script avoids template literals so that it can live in this TS string.

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
  header { display: flex; align-items: baseline; gap: 16px; padding: 12px 20px; background: #1d2330; color: #fff; }
  header h1 { margin: 0; font-size: 18px; }
  header .sub { color: #aab1bd; font-size: 13px; }
  #conn { margin-left: auto; font-size: 13px; }
  main { display: grid; grid-template-columns: repeat(4, 1fr); gap: 14px; padding: 14px 20px; }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
  .card h2 { margin: 0 0 8px; font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .05em; color: var(--mute); }
  .big { font-size: 28px; font-weight: 600; font-variant-numeric: tabular-nums; }
  .small { color: var(--mute); font-size: 12px; }
  .wide { grid-column: span 2; }
  .full { grid-column: 1 / -1; }
  .state-up { color: var(--ok); } .state-waiting { color: var(--bad); } .state-handshake { color: var(--warn); }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align: right; padding: 3px 6px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
  th { font-size: 12px; color: var(--mute); font-weight: 600; }
  .bar { height: 10px; background: var(--accent); border-radius: 2px; min-width: 1px; }
  #hist { display: flex; align-items: flex-end; gap: 4px; height: 140px; padding-top: 6px; }
  #hist .col { flex: 1; display: flex; flex-direction: column; justify-content: flex-end; align-items: center; height: 100%; }
  #hist .fill { width: 100%; background: var(--accent); border-radius: 2px 2px 0 0; min-height: 1px; }
  #hist .lbl { font-size: 10px; color: var(--mute); margin-top: 3px; white-space: nowrap; }
  #hist .n { font-size: 10px; color: var(--ink); }
  #events { font: 12px/1.5 ui-monospace, monospace; max-height: 260px; overflow: hidden; }
  #events div { white-space: pre; overflow: hidden; text-overflow: ellipsis; border-bottom: 1px dotted var(--line); }
  .k-expired, .k-dropped, .k-session-down { color: var(--bad); } .k-session-up { color: var(--ok); } .k-answered { color: var(--ok); }
  svg { width: 100%; height: 60px; }
</style>
</head>
<body>
<header><h1>iopf-relay</h1><span class="sub" id="software">connecting…</span><span id="conn">○ offline</span></header>
<main>
  <div class="card"><h2>Session</h2><div class="big" id="session">–</div><div class="small" id="agent"></div></div>
  <div class="card"><h2>Groups in flight</h2><div class="big" id="inflight">–</div><div class="small" id="queued"></div></div>
  <div class="card"><h2>Groups per second</h2><div class="big" id="rate">–</div><svg id="spark" viewBox="0 0 120 60" preserveAspectRatio="none"><polygon id="sparkarea" fill="#2f6fdf22" points=""/><polyline id="sparkline" fill="none" stroke="#2f6fdf" stroke-width="1.5" vector-effect="non-scaling-stroke" points=""/></svg><div class="small">last 60 s</div></div>
  <div class="card"><h2>Answers</h2><div class="big" id="answered">–</div><div class="small" id="answerparts"></div></div>
  <div class="card wide"><h2>Per device</h2><table><thead><tr><th>dev</th><th>name</th><th>groups/s</th><th></th><th>success</th><th>invalid</th><th>expired</th><th>mean latency</th></tr></thead><tbody id="devices"></tbody></table></div>
  <div class="card wide"><h2>Answer latency <span id="pcts" style="text-transform:none;font-weight:400"></span></h2><div id="hist"></div></div>
  <div class="card full"><h2>Recent events <span id="evrate" style="text-transform:none;font-weight:400"></span></h2><div id="events"></div></div>
</main>
<script src="/dashboard.js"></script>
</body>
</html>
`;

export const DASHBOARD_JS = String.raw`"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var prev = null;
  var history = [];
  var eventsSeen = 0, eventsAtLastTick = 0, lost = 0;
  var MAX_EVENTS = 40;

  function fmt(n) { return n >= 1e6 ? (n / 1e6).toFixed(1) + "M" : n >= 1e4 ? (n / 1e3).toFixed(1) + "k" : String(Math.round(n)); }
  function us(n) { return n >= 1e6 ? (n / 1e6).toFixed(n % 1e6 ? 1 : 0) + " s" : n >= 1000 ? (n / 1000).toFixed(n >= 10000 ? 0 : 1) + " ms" : n + " µs"; }
  function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }

  function render(s) {
    var dt = prev ? (s.now - prev.now) / 1000 : 0;
    $("software").textContent = s.software + " · " + s.viommu + " · " + s.sources.join(", ") + " · up " + Math.round(s.uptimeS) + " s";
    var st = $("session");
    st.textContent = s.session.state;
    st.className = "big state-" + s.session.state;
    $("agent").textContent = s.session.agent ? s.session.agent + " · epoch " + s.session.epoch + " · window " + s.creditWindow
      : (s.session.lastDownReason ? "last down: " + s.session.lastDownReason : "no agent yet");
    $("inflight").textContent = fmt(s.inFlight);
    $("queued").textContent = s.queued + " waiting for credit";
    var c = s.counters;
    $("answered").textContent = fmt(c.answered);
    var guest = c.answers.guest || { success: 0, invalid: 0 };
    $("answerparts").textContent = "guest " + fmt(guest.success) + " ok / " + fmt(guest.invalid) + " invalid · deadline " + fmt(c.deadlines) +
      " · dropped " + fmt(Object.values(c.dropped).reduce(function (a, b) { return a + b; }, 0)) + " · refused " + fmt(c.refused);
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

  function renderDevices(s, dt) {
    var before = {};
    if (prev) prev.devices.forEach(function (d) { before[d.devId] = d; });
    var rates = s.devices.map(function (d) { var p = before[d.devId]; return p && dt > 0 ? (d.groups - p.groups) / dt : 0; });
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
      tr.appendChild(el("td", us(d.meanLatencyUs)));
      body.appendChild(tr);
    });
  }

  function renderHistogram(h) {
    $("pcts").textContent = h.count ? "· p50 " + us(h.p50) + " · p90 " + us(h.p90) + " · p99 " + us(h.p99) + " · max " + us(h.max) : "· no answers yet";
    var cols = h.buckets.concat([{ leUs: -1, count: h.over }]);
    var max = Math.max.apply(null, cols.map(function (b) { return b.count; }).concat([1]));
    var box = $("hist");
    box.textContent = "";
    cols.forEach(function (b) {
      var col = el("div", undefined, "col");
      col.appendChild(el("div", b.count ? fmt(b.count) : "", "n"));
      var fill = el("div", undefined, "fill"); fill.style.height = (100 * b.count / max).toFixed(1) + "%";
      col.appendChild(fill);
      col.appendChild(el("div", b.leUs < 0 ? ">1s" : "≤" + us(b.leUs).replace(" ", ""), "lbl"));
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
    list.slice(-MAX_EVENTS).forEach(function (e) { box.insertBefore(el("div", describe(e), "k-" + e.kind), box.firstChild); });
    while (box.childNodes.length > MAX_EVENTS) box.removeChild(box.lastChild);
  }

  function connect() {
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/events");
    ws.onopen = function () { ws.send(JSON.stringify({ type: "subscribe" })); $("conn").textContent = "● live"; };
    ws.onmessage = function (m) {
      var msg = JSON.parse(m.data);
      if (msg.type === "events") addEvents(msg.events);
      else if (msg.type === "lost") lost += msg.count;
    };
    ws.onclose = function () { $("conn").textContent = "○ offline, retrying"; setTimeout(connect, 2000); };
  }

  function poll() {
    fetch("/api/status").then(function (r) { return r.json(); }).then(render, function () { $("conn").textContent = "○ offline"; })
      .finally(function () { setTimeout(poll, 1000); });
  }

  connect();
  poll();
})();
`;
