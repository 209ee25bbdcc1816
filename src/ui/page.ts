/**
 * The dashboard page: one HTML document with its script inline; the graphs are uPlot (served by the dashboard from
 * node_modules). The script polls `/api/state` every second and redraws. Values are inserted as text, never as
 * HTML, so a table name cannot inject markup.
 */
export function dashboardPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ferry</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="uplot.css">
<style>
  :root { --bg:#0f1419; --panel:#172029; --line:#263341; --text:#d8e0e8; --dim:#8394a5; --accent:#3fb6e8; --ok:#4cc38a; --warn:#e8b33f; --bad:#ef6b6b; }
  * { box-sizing: border-box; }
  body { margin:0; background:var(--bg); color:var(--text); font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
  header { display:flex; gap:16px; align-items:baseline; padding:14px 20px; border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; }
  .badge { padding:2px 10px; border-radius:10px; background:var(--accent); color:#051018; font-weight:600; }
  .badge.failed { background:var(--bad); } .badge.done, .badge.stopped { background:var(--ok); }
  .dim { color:var(--dim); }
  main { padding:16px 20px; display:grid; gap:16px; }
  .cards { display:grid; grid-template-columns:repeat(auto-fit, minmax(150px, 1fr)); gap:12px; }
  .card { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
  .card .v { font-size:22px; font-variant-numeric: tabular-nums; }
  .card .k { color:var(--dim); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
  section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
  section h2 { font-size:13px; margin:0 0 8px; color:var(--dim); text-transform:uppercase; letter-spacing:.05em; }
  table { width:100%; border-collapse:collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align:right; padding:4px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
  th:first-child, td:first-child { text-align:left; }
  th { color:var(--dim); font-weight:500; }
  .bar { width:160px; height:8px; background:#0b1015; border-radius:4px; overflow:hidden; display:inline-block; vertical-align:middle; }
  .bar > i { display:block; height:100%; background:var(--accent); } .bar > i.full { background:var(--ok); }
  .charts { display:grid; grid-template-columns:repeat(auto-fit, minmax(460px, 1fr)); gap:16px; }
  .bad { color:var(--bad); } .warn { color:var(--warn); }
  #banner { display:none; background:#3a1717; border:1px solid var(--bad); border-radius:8px; padding:10px 14px; }
  ul { margin:0; padding-left:18px; } li { margin:2px 0; }
  .uplot { color:var(--text); } .u-legend { font-size:12px; }
</style></head>
<body>
<header><h1>Ferry</h1><span id="flow" class="dim"></span><span id="phase" class="badge">…</span>
  <span class="dim">elapsed <b id="elapsed">–</b></span><span class="dim" id="updated"></span></header>
<main>
  <div id="banner"></div>
  <div class="cards">
    <div class="card"><div class="k">rows copied</div><div class="v" id="total-rows">–</div><div class="dim" id="total-est"></div></div>
    <div class="card"><div class="k">snapshot rate</div><div class="v" id="total-rate">–</div><div class="dim" id="total-eta"></div></div>
    <div class="card"><div class="k">lag</div><div class="v" id="lag-seconds">–</div><div class="dim" id="lag-bytes"></div></div>
    <div class="card"><div class="k">changes applied</div><div class="v" id="changes-applied">–</div><div class="dim" id="changes-rate"></div></div>
    <div class="card"><div class="k" id="retained-k">WAL retained</div><div class="v" id="retained">–</div><div class="dim" id="position"></div></div>
  </div>
  <section><h2>Tables</h2><table id="tables"><thead><tr><th>table</th><th></th><th>%</th><th>rows</th><th>bytes</th><th>rows/s</th><th>ETA</th><th>ranges done</th><th>running</th><th>failed</th></tr></thead><tbody></tbody></table></section>
  <div class="charts">
    <section><h2>Throughput</h2><div id="chart-rate"></div></section>
    <section><h2>Lag</h2><div id="chart-lag"></div></section>
  </div>
  <section><h2>Changes by kind (received from the source / applied on the target)</h2>
    <table id="changes"><thead><tr><th>table</th><th>inserts</th><th>updates</th><th>deletes</th><th>truncates</th><th>total</th></tr></thead><tbody></tbody></table></section>
  <section><h2>Warnings and errors</h2><ul id="warnings"><li class="dim">none</li></ul></section>
</main>
<script src="uplot.js"></script>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token");
const $ = (id) => document.getElementById(id);
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; };
const count = (n) => n == null ? "–" : n < 1000 ? String(Math.round(n)) : n < 1e6 ? (n / 1e3).toFixed(n < 1e4 ? 2 : 1) + "k" : (n / 1e6).toFixed(2) + "M";
const bytes = (n) => { if (n == null) return "–"; const u = ["B","KB","MB","GB","TB"]; let i = 0; while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; } return (i ? n.toFixed(1) : Math.round(n)) + " " + u[i]; };
const dur = (s) => { if (s == null || !isFinite(s)) return "–"; s = Math.round(s); if (s < 60) return s + "s"; const m = Math.floor(s / 60); return m < 60 ? m + "m " + (s % 60) + "s" : Math.floor(m / 60) + "h " + (m % 60) + "m"; };
let started = Date.now();
let charts = null;

function makeCharts() {
  const w = Math.max(400, $("chart-rate").clientWidth || 460);
  const axes = (label) => [{ stroke: "#8394a5", grid: { stroke: "#263341" } }, { stroke: "#8394a5", grid: { stroke: "#263341" }, label, size: 60 }];
  const rate = new uPlot({ width: w, height: 220, series: [{}, { label: "snapshot rows/s", stroke: "#3fb6e8", width: 2 }, { label: "changes applied/s", stroke: "#4cc38a", width: 2 }], axes: axes("per second"), scales: { x: { time: true } } }, [[], [], []], $("chart-rate"));
  const lag = new uPlot({ width: w, height: 220,
    series: [{}, { label: "lag (s)", stroke: "#e8b33f", width: 2, scale: "s" }, { label: "slot lag (bytes)", stroke: "#ef6b6b", width: 1, scale: "b", value: (u, v) => bytes(v) }],
    axes: [{ stroke: "#8394a5", grid: { stroke: "#263341" } }, { scale: "s", stroke: "#8394a5", grid: { stroke: "#263341" }, label: "seconds", size: 60 }, { scale: "b", side: 1, stroke: "#8394a5", grid: { show: false }, values: (u, vs) => vs.map(bytes), size: 70 }],
    scales: { x: { time: true } } }, [[], [], []], $("chart-lag"));
  return { rate, lag };
}

function render(s) {
  $("flow").textContent = s.flow;
  if (s.createdAt) started = s.createdAt;
  const phase = $("phase"); phase.textContent = s.phase; phase.className = "badge " + s.phase;
  $("updated").textContent = "updated " + new Date(s.now).toLocaleTimeString();
  const t = s.totals;
  $("total-rows").textContent = count(t.rows); $("total-est").textContent = "of ~" + count(t.estimatedRows) + " · " + bytes(t.bytes);
  $("total-rate").textContent = count(t.rate) + "/s"; $("total-eta").textContent = t.etaSeconds != null ? "ETA " + dur(t.etaSeconds) : "";
  const st = s.streaming;
  $("lag-seconds").textContent = st && st.lagSeconds != null ? st.lagSeconds.toFixed(2) + " s" : "–";
  $("lag-bytes").textContent = st && st.slot ? bytes(st.slot.lagBytes) + " behind · slot " + (st.slot.active ? "active" : "inactive") + (st.reconnects ? " · " + st.reconnects + " reconnects" : "") : "";
  $("changes-applied").textContent = st ? count(st.changes) : "–";
  const last = s.history[s.history.length - 1];
  $("changes-rate").textContent = st ? count(last ? last.changesPerSec : 0) + "/s · " + count(st.transactions) + " transactions" : "";
  $("retained").textContent = st && st.slot ? bytes(st.slot.retainedBytes) : "–";
  const cs = st && st.changeStream;
  if (cs) {
    // A MongoDB source has no slot: the resume token's age, the source's cluster time and the oplog window instead.
    $("retained-k").textContent = "resume token age";
    $("retained").textContent = dur(cs.tokenAgeSeconds);
    $("lag-bytes").textContent = (cs.behindSeconds != null ? dur(cs.behindSeconds) + " behind the source's cluster time" : "source cluster time unknown") +
      " · oplog window " + (cs.oplogWindowSeconds != null ? dur(cs.oplogWindowSeconds) : "unknown") + (st.reconnects ? " · " + st.reconnects + " reconnects" : "");
  }
  $("position").textContent = st && st.position ? "applied up to " + st.position : "";

  const errs = [];
  if (s.runError) errs.push("Last run failed in " + s.runError.phase + ": " + s.runError.message + (s.runError.hint ? " — " + s.runError.hint : ""));
  if (s.error) errs.push(s.error);
  for (const f of s.failedRanges) errs.push("range " + f.table + " " + f.label + " failed: " + f.error);
  const banner = $("banner"); banner.replaceChildren(...errs.map((e) => el("div", e, "bad"))); banner.style.display = errs.length ? "block" : "none";

  const body = $("tables").tBodies[0]; body.replaceChildren();
  for (const r of s.tables) {
    const tr = el("tr"); tr.dataset.table = r.table;
    const ratio = r.ranges.done >= r.ranges.total ? 1 : r.estimatedRows > 0 ? Math.min(0.99, r.rows / r.estimatedRows) : 0;
    const bar = el("span", undefined, "bar"); const fill = el("i", undefined, ratio >= 1 ? "full" : ""); fill.style.width = (ratio * 100).toFixed(1) + "%"; bar.append(fill);
    const cells = [r.target !== r.table ? r.table + " → " + r.target : r.table, null, Math.floor(ratio * 100) + "%", count(r.rows), bytes(r.bytes), r.rate ? count(r.rate) : "", r.etaSeconds != null ? dur(r.etaSeconds) : ratio >= 1 ? "done" : "", r.ranges.done + "/" + r.ranges.total, r.ranges.running || "", r.ranges.failed || ""];
    cells.forEach((c, i) => { const td = el("td", c === null ? undefined : c, i === 9 && r.ranges.failed ? "bad" : ""); if (c === null) td.append(bar); tr.append(td); });
    body.append(tr);
  }

  const cb = $("changes").tBodies[0]; cb.replaceChildren();
  const kinds = ["insert", "update", "delete", "truncate"];
  for (const [table, c] of Object.entries(s.changes)) {
    const tr = el("tr"); tr.dataset.table = table; tr.append(el("td", table));
    let tr_ = 0, ta = 0;
    for (const k of kinds) { tr_ += c.received[k]; ta += c.applied[k]; tr.append(el("td", count(c.received[k]) + " / " + count(c.applied[k]), c.received[k] > c.applied[k] ? "warn" : "")); }
    tr.append(el("td", count(tr_) + " / " + count(ta))); cb.append(tr);
  }
  if (!cb.children.length) { const tr = el("tr"); const td = el("td", st ? "no changes yet" : "shown while streaming (mode snapshot+cdc)", "dim"); td.colSpan = 6; tr.append(td); cb.append(tr); }

  const wl = $("warnings"); wl.replaceChildren();
  for (const w of s.warnings.slice().reverse()) wl.append(el("li", new Date(w.at).toLocaleTimeString() + "  " + w.message, "warn"));
  if (!wl.children.length) wl.append(el("li", "none", "dim"));

  if (typeof uPlot !== "undefined") {
    charts = charts || makeCharts();
    const h = s.history;
    charts.rate.setData([h.map((x) => x.t), h.map((x) => x.rowsPerSec), h.map((x) => x.changesPerSec)]);
    charts.lag.setData([h.map((x) => x.t), h.map((x) => x.lagSeconds), h.map((x) => x.lagBytes)]);
  }
}

async function poll() {
  try {
    const res = await fetch("api/state", { headers: token ? { "x-ferry-token": token } : {} });
    if (res.ok) render(await res.json()); else $("updated").textContent = "dashboard: HTTP " + res.status;
  } catch (e) { $("updated").textContent = "dashboard: ferry is not answering (" + e.message + ")"; }
  $("elapsed").textContent = dur((Date.now() - started) / 1000);
}
poll(); setInterval(poll, 1000);
</script></body></html>
`;
}
