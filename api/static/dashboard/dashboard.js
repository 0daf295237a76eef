// The Provenance Ledger dashboard: plain JavaScript over the public API, charts by the
// vendored Chart.js. The key lives in sessionStorage only; every view honours as_of.
"use strict";

const KEY_ITEM = "provenance-ledger-key";
const COLOURS = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#00838f", "#ad1457", "#4e342e"];
const BAD = "#c62828", OPEN = "#9e9e9e", GOOD = "#90a4ae";

// What the page shows, exposed for tests and the curious (window.dashboard).
const state = { asOf: null, deployments: [], health: null, names: {}, charts: {}, loaded: false };
window.dashboard = state;

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || body.title || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
  }
  if (state.asOf) url.searchParams.set("as_of", state.asOf);
  const response = await fetch(url, { headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY_ITEM)}` } });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) forgetKey("The key was refused: " + (body.detail || "unknown key"));
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// -- small DOM helpers ---------------------------------------------------------------
function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "—" : String(text);
  if (className) td.className = className;
  return td;
}

function fill(select, values, labels = {}) {
  const keep = select.value;
  select.replaceChildren(...values.map((v) => new Option(labels[v] || v, v)));
  if (values.includes(keep)) select.value = keep;
}

function fmt(value, digits = 3) {
  return typeof value === "number" ? value.toFixed(digits) : value;
}

function modelName(id) {
  return state.names[id] ? `${state.names[id]} (${id.slice(0, 8)})` : (id || "").slice(0, 8);
}

function lookupLink(td, id) {
  const a = document.createElement("a");
  a.className = "lookup";
  a.textContent = id.slice(0, 8) + "…";
  a.title = id;
  a.addEventListener("click", () => { $("lookup-id").value = id; showPrediction(id); });
  td.replaceChildren(a);
}

function note(id, text) {
  $(id).textContent = text || "";
}

function chart(name, canvasId, config) {
  if (state.charts[name]) state.charts[name].destroy();
  state.charts[name] = new Chart($(canvasId), config);
  return state.charts[name];
}

// -- deployments ---------------------------------------------------------------------
async function loadDeployments() {
  const page = await api("/v1/deployments", { limit: 1000 });
  state.deployments = page.items;
  for (const d of page.items) {
    for (const m of [d.leader, ...(d.challengers || [])].filter(Boolean)) state.names[m.id] = m.name || "";
  }
  const body = $("deployments-table").tBodies[0];
  body.replaceChildren();
  for (const d of page.items) {
    const row = body.insertRow();
    cell(row, d.name);
    cell(row, d.task);
    cell(row, d.policy && d.policy.name);
    cell(row, d.leader ? modelName(d.leader.id) : null);
    cell(row, (d.challengers || []).map((m) => modelName(m.id)).join(", ") || null);
    cell(row, d.version, "num");
  }
  const names = page.items.map((d) => d.name);
  for (const id of ["performance-deployment", "slice-deployment", "drift-deployment"]) fill($(id), names);
}

// -- performance over time, leader changes marked ---------------------------------------
const leaderLines = {
  id: "leaderLines",
  afterDatasetsDraw(c, _args, options) {
    const { ctx, chartArea, scales } = c;
    for (const change of options.changes || []) {
      const x = scales.x.getPixelForValue(change.index);
      ctx.save();
      ctx.strokeStyle = "#424242";
      ctx.setLineDash([4, 4]);
      ctx.beginPath();
      ctx.moveTo(x, chartArea.top);
      ctx.lineTo(x, chartArea.bottom);
      ctx.stroke();
      ctx.fillStyle = "#424242";
      ctx.fillText("leader: " + modelName(change.model_id), x + 4, chartArea.top + 12);
      ctx.restore();
    }
  },
};

function renderPerformance() {
  const name = $("performance-deployment").value;
  const health = (state.health.model_health || []).find((h) => h.deployment === name);
  if (!health || !health.days) {
    note("performance-note", health && health.unavailable ? `No metrics yet: ${health.unavailable}` : "No metrics yet.");
    if (state.charts.performance) state.charts.performance.destroy();
    delete state.charts.performance;
    return;
  }
  const datasets = health.models.map((m, i) => ({
    label: `${modelName(m.model_id)} · ${m.role}`, data: m.points.map((p) => p.value),
    borderColor: COLOURS[i % COLOURS.length], backgroundColor: COLOURS[i % COLOURS.length],
    spanGaps: true, modelId: m.model_id,
  }));
  if (health.floor !== null && health.floor !== undefined) {
    datasets.push({ label: `floor (${health.metric})`, data: health.days.map(() => health.floor),
      borderColor: BAD, borderDash: [6, 4], pointRadius: 0, isFloor: true });
  }
  const changes = health.leader_changes.map((c) => ({ ...c, index: health.days.indexOf(c.at.slice(0, 10)) }))
    .filter((c) => c.index >= 0);
  chart("performance", "performance-chart", {
    type: "line", data: { labels: health.days, datasets },
    options: { maintainAspectRatio: false, animation: false,
      scales: { y: { title: { display: true, text: health.metric } } },
      plugins: { leaderLines: { changes } } },
    plugins: [leaderLines],
  });
  note("performance-note", `${health.metric} per day of prediction time; rolling over ${health.window_days} days ` +
    `against the floor. Dashed verticals: leader changes.`);
  renderModelHealth(health);
}

function renderModelHealth(health) {
  const body = $("model-health-table").tBodies[0];
  body.replaceChildren();
  for (const m of health.models) {
    const row = body.insertRow();
    if (m.below_floor) row.className = "bad";
    cell(row, modelName(m.model_id));
    cell(row, m.role);
    cell(row, fmt(m.rolling.value), "num");
    cell(row, m.rolling.count, "num");
    cell(row, health.floor === null ? "none set" : (m.below_floor ? "below floor" : "ok"));
  }
}

// -- slices --------------------------------------------------------------------------
function fillSliceFeatures() {
  const d = state.deployments.find((x) => x.name === $("slice-deployment").value);
  const features = d ? d.schema.features.filter((f) => !f.personal).map((f) => f.name) : [];
  fill($("slice-feature"), features);
}

async function renderSlices() {
  const deployment = $("slice-deployment").value, feature = $("slice-feature").value;
  const table = $("slice-table");
  table.tHead.replaceChildren();
  table.tBodies[0].replaceChildren();
  if (!deployment || !feature) return;
  let answer;
  try {
    answer = await api("/v1/performance", { deployment, slice: feature });
  } catch (error) {
    note("slice-note", `Slices unavailable: ${error.message}`);
    return;
  }
  const metrics = answer.task === "regression" ? ["mae", "rmse"] : ["precision", "recall", "accuracy", "f1"];
  const head = table.tHead.insertRow();
  for (const title of [feature, "model", "count", ...metrics]) head.appendChild(document.createElement("th")).textContent = title;
  for (const r of answer.results.filter((x) => x.slice_value !== null)) {
    const row = table.tBodies[0].insertRow();
    cell(row, r.slice_value);
    cell(row, modelName(r.model_id));
    cell(row, r.count, "num");
    for (const m of metrics) cell(row, fmt(r[m]), "num");
  }
  note("slice-note", answer.results.length ? "" : "No matured outcomes in this window yet.");
}

// -- feeds ---------------------------------------------------------------------------
function renderFeeds() {
  const feeds = state.health.feeds || [];
  fill($("feed-select"), feeds.map((f) => f.name));
  const feed = feeds.find((f) => f.name === $("feed-select").value);
  if (!feed) {
    note("feed-note", "No feeds declared: `ledger feeds declare NAME --expected N`.");
    return;
  }
  const periods = feed.periods;
  const colours = periods.map((p) => (!p.closed ? OPEN : p.flags.length ? BAD : GOOD));
  chart("feeds", "feeds-chart", {
    data: { labels: periods.map((p) => p.start.slice(5, 16).replace("T", " ")), datasets: [
      { type: "bar", label: "received", data: periods.map((p) => p.received), backgroundColor: colours },
      { type: "line", label: "expected", data: periods.map((p) => p.expected), borderColor: "#424242", pointRadius: 0 },
    ] },
    options: { maintainAspectRatio: false, animation: false,
      plugins: { tooltip: { callbacks: { afterBody: (items) => {
        const p = periods[items[0].dataIndex];
        return p.closed ? (p.flags.length ? "flagged: " + p.flags.join(", ") : "ok") : "open period";
      } } } } },
  });
  note("feed-note", `${feed.flagged_periods} of the closed periods shown are flagged (red); ` +
    `grey is the period still open. Tolerance ±${Math.round(feed.tolerance * 100)}%.`);
}

// -- drift and outliers --------------------------------------------------------------
function renderDrift() {
  const name = $("drift-deployment").value;
  const entry = (state.health.deployments || []).find((d) => d.name === name);
  $("drift-table").tBodies[0].replaceChildren();
  if (!entry) {
    note("drift-note", "No quality checks recorded for this deployment yet.");
    if (state.charts.drift) state.charts.drift.destroy();
    delete state.charts.drift;
    return;
  }
  const drift = entry.drift.filter((f) => f.psi !== null);
  chart("drift", "drift-chart", {
    type: "bar",
    data: { labels: drift.map((f) => f.feature), datasets: [{ label: "PSI", data: drift.map((f) => f.psi),
      backgroundColor: drift.map((f) => (f.drifted ? BAD : GOOD)) }] },
    options: { maintainAspectRatio: false, animation: false, indexAxis: "y" },
  });
  for (const f of entry.drift) {
    const row = $("drift-table").tBodies[0].insertRow();
    if (f.drifted) row.className = "bad";
    [f.feature, fmt(f.psi), fmt(f.ks_statistic), fmt(f.ks_pvalue, 4), fmt(f.null_share), f.drifted ? "yes" : "no"]
      .forEach((v, i) => cell(row, v, i && i < 5 ? "num" : ""));
  }
  const latest = entry.latest;
  note("drift-note", `Latest check ${latest.key} (${latest.rows} rows, ${latest.recorded_at}); ` +
    `outlier share ${fmt(latest.outlier_share)}; failing: ${latest.failing.join(", ") || "none"}.`);
}

// -- flagged predictions -------------------------------------------------------------
async function renderFlagged() {
  const body = $("flagged-table").tBodies[0];
  body.replaceChildren();
  note("flagged-note", "");
  const rows = [];
  try {
    const page = await api("/v1/predictions", { flagged: "true", limit: 20 });
    for (const p of page.items) rows.push([p.prediction_id, p.deployment, p.flags.join(", "), p.recorded_at]);
  } catch (error) {
    note("flagged-note", `Inline flags unavailable: ${error.message}`);
  }
  for (const d of state.health.deployments || []) {
    for (const check of d.checks.slice(0, 3)) {  // window checks name the predictions their forest flagged
      const ids = (check.outliers || []).filter((id) => typeof id === "string").slice(0, 5);
      for (const id of ids) rows.push([id, d.name, `outlier (IsolationForest, ${check.key})`, check.recorded_at]);
    }
  }
  for (const [id, deployment, flags, when] of rows.slice(0, 40)) {
    const row = body.insertRow();
    lookupLink(cell(row, id), id);
    cell(row, deployment);
    cell(row, flags);
    cell(row, when);
  }
  if (!rows.length) note("flagged-note", ($("flagged-note").textContent + " No flagged predictions.").trim());
}

// -- prediction lookup ---------------------------------------------------------------
async function showPrediction(id) {
  const out = $("lookup-result");
  out.replaceChildren();
  let p;
  try {
    p = await api(`/v1/predictions/${encodeURIComponent(id.trim())}`);
  } catch (error) {
    out.textContent = `Not shown: ${error.message}`;
    return;
  }
  const summary = document.createElement("dl");
  summary.className = "summary";
  const served = p.served || {};
  const facts = [["deployment", p.deployment], ["recorded at", p.recorded_at], ["served by", modelName(served.model_id || "")],
    ["value", JSON.stringify(served.value)], ["policy", p.policy && p.policy.name],
    ["leader set by", p.leader && p.leader.set_by ? `${p.leader.set_by.actor}: ${p.leader.set_by.reason}` : null],
    ["flags", (p.flags || []).join(", ") || "none"], ["outcome", p.outcome ? JSON.stringify(p.outcome.actual) : "not yet"],
    ["chain", p.chain && p.chain.status]];
  for (const [term, value] of facts) {
    summary.appendChild(document.createElement("dt")).textContent = term;
    summary.appendChild(document.createElement("dd")).textContent = value === null || value === undefined ? "—" : value;
  }
  const pre = document.createElement("pre");
  pre.id = "lookup-json";
  pre.textContent = JSON.stringify(p, null, 2);
  out.replaceChildren(summary, pre);
}

// -- loading, as_of and the key ------------------------------------------------------
async function refresh() {
  state.loaded = false;
  document.body.dataset.loaded = "false";
  note("status", "");
  try {
    await loadDeployments();
    state.health = await api("/v1/data-health");
    fillSliceFeatures();
    renderPerformance();
    renderFeeds();
    renderDrift();
    await Promise.all([renderSlices(), renderFlagged()]);
  } catch (error) {
    if (error.status !== 401) note("status", `Could not load: ${error.message}`);  // 401: forgetKey said why
  }
  state.loaded = true;
  document.body.dataset.loaded = "true";
}

function setAsOf(value) {
  state.asOf = value;
  $("as-of-label").textContent = value ? `as of ${value}` : "now";
  $("as-of-label").className = value ? "badge past" : "badge";
  return refresh();
}

function showViews(open) {
  $("login").hidden = open;
  $("views").hidden = !open;
  $("as-of-form").hidden = !open;
  $("forget-key").hidden = !open;
}

function forgetKey(reason) {
  sessionStorage.removeItem(KEY_ITEM);
  showViews(false);
  note("status", reason || "");
}

function wire() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_ITEM, $("key-input").value.trim());
    $("key-input").value = "";
    showViews(true);
    refresh();
  });
  $("forget-key").addEventListener("click", () => forgetKey("Key forgotten."));
  $("as-of-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("as-of-input").value;
    if (value) setAsOf(new Date(value + "Z").toISOString().replace(".000Z", "Z"));
  });
  $("as-of-now").addEventListener("click", () => { $("as-of-input").value = ""; setAsOf(null); });
  $("performance-deployment").addEventListener("change", renderPerformance);
  $("slice-deployment").addEventListener("change", () => { fillSliceFeatures(); renderSlices(); });
  $("slice-feature").addEventListener("change", renderSlices);
  $("feed-select").addEventListener("change", renderFeeds);
  $("drift-deployment").addEventListener("change", renderDrift);
  $("lookup-form").addEventListener("submit", (event) => { event.preventDefault(); showPrediction($("lookup-id").value); });
}

wire();
if (sessionStorage.getItem(KEY_ITEM)) {
  showViews(true);
  refresh();
}
