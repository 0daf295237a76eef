// The Provenance Ledger dashboard: plain JavaScript over the public API, charts by the
// vendored Chart.js. The key lives in sessionStorage only; every card honours as_of, which
// the address keeps (#as_of=...) so a view can be linked.
"use strict";

const KEY_ITEM = "provenance-ledger-key";
const COLOURS = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#00838f", "#ad1457", "#4e342e"];
const BAD = "#c62828", OPEN = "#9e9e9e", GOOD = "#90a4ae";
const TOP_REASONS = 5;

// What the page shows, exposed for tests and the curious (window.dashboard).
const state = {
  asOf: null, deployments: [], health: null, names: {}, charts: {}, loaded: false,
  epoch: 0, leaderLabels: [], lookupId: null,
};
window.dashboard = state;

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || body.title || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

// An answer that arrives after the key or as_of changed belongs to a view no longer shown.
class Stale extends Error {}

async function api(path, params = {}) {
  const epoch = state.epoch;
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
  }
  if (state.asOf) url.searchParams.set("as_of", state.asOf);
  const response = await fetch(url, { headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY_ITEM)}` } });
  const body = await response.json().catch(() => ({}));
  if (epoch !== state.epoch) throw new Stale();
  if (response.status === 401) forgetKey("The key was refused: " + (body.detail || "unknown key"));
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// -- cards: each loads on its own; one the key may not read is emptied and says so ---------
const CARDS = {
  "deployments-view": "deployments-note", "performance-view": "performance-note",
  "slices-view": "slice-note", "feeds-view": "feed-note", "drift-view": "drift-note",
  "flagged-view": "flagged-note", "lookup-view": "lookup-note",
};

function emptyCard(cardId) {
  const card = $(cardId);
  for (const body of card.querySelectorAll("tbody, ol, thead.dynamic")) body.replaceChildren();
  for (const canvas of card.querySelectorAll("canvas")) {
    const name = Object.keys(state.charts).find((n) => state.charts[n].canvas === canvas);
    if (name) { state.charts[name].destroy(); delete state.charts[name]; }
  }
  for (const out of card.querySelectorAll("#lookup-result")) out.replaceChildren();
  card.classList.remove("denied");
  note(CARDS[cardId], "");
}

function emptyAll() {
  for (const cardId of Object.keys(CARDS)) emptyCard(cardId);
  for (const id of ["performance-deployment", "slice-deployment", "slice-feature", "drift-deployment", "feed-select"]) {
    if ($(id).value) $(id).dataset.want = $(id).value;  // chosen again once the new answers list it
    $(id).replaceChildren();
  }
  state.deployments = [];
  state.health = null;
  state.names = {};
  state.leaderLabels = [];
}

function refused(cardId, error) {
  if (error instanceof Stale) return;
  emptyCard(cardId);
  if (error.status === 401 || error.status === 403) {
    $(cardId).classList.add("denied");
    note(CARDS[cardId], `This key may not read this card (${error.status}: ${error.message}).`);
  } else {
    note(CARDS[cardId], `Unavailable: ${error.message}`);
  }
}

async function card(cardId, work) {
  try {
    await work();
  } catch (error) {
    refused(cardId, error);
  }
}

// -- small DOM helpers ---------------------------------------------------------------
function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "—" : String(text);
  if (className) td.className = className;
  return td;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function fill(select, values, labels = {}) {
  const keep = select.value || select.dataset.want;
  select.replaceChildren(...values.map((v) => new Option(labels[v] || v, v)));
  if (values.includes(keep)) select.value = keep;
}

function fmt(value, digits = 3) {
  return typeof value === "number" ? value.toFixed(digits) : value;
}

function when(iso) {
  return iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace(/Z$/, " UTC") : "—";
}

function modelName(id) {
  return state.names[id] ? `${state.names[id]} (${id.slice(0, 8)})` : (id || "").slice(0, 8);
}

function note(id, text) {
  $(id).textContent = text || "";
}

function chart(name, canvasId, config) {
  if (state.charts[name]) state.charts[name].destroy();
  state.charts[name] = new Chart($(canvasId), config);
  return state.charts[name];
}

function dropChart(name) {
  if (state.charts[name]) state.charts[name].destroy();
  delete state.charts[name];
}

// -- deployments: who leads, since when, made leader by whom, under which policy ---------
function policyText(policy) {
  if (!policy || !policy.name) return null;
  const params = Object.entries(policy).filter(([k]) => k !== "name").map(([k, v]) => `${k}=${v}`);
  return params.length ? `${policy.name} (${params.join(", ")})` : policy.name;
}

// Loaded history says when a change happened (occurred_at); live changes, when recorded.
function changedAt(change) {
  return change.occurred_at || change.recorded_at;
}

function lastChange(d) {
  const history = d.leader_history || [];
  return history.length ? history[history.length - 1] : null;
}

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
    const change = lastChange(d);
    cell(row, `${d.name} · ${d.task}`);
    cell(row, d.leader ? modelName(d.leader.id) : "none", "leader");
    cell(row, d.leader_since ? `${when(changedAt(d.leader_since))} (#${d.leader_since.position})` : null);
    cell(row, change ? `${change.actor}: ${change.reason}` : null);
    cell(row, policyText(d.policy));
    cell(row, (d.challengers || []).map((m) => modelName(m.id)).join(", ") || null);
    cell(row, d.version, "num");
  }
  note("deployments-note", page.items.length ? "" : "No deployments yet.");
  const names = page.items.map((d) => d.name);
  for (const id of ["performance-deployment", "slice-deployment", "drift-deployment"]) fill($(id), names);
}

// -- performance over time, outcome counts beneath, leader changes marked -----------------
// Labels that would run past the plot's right edge are drawn to the left of their line, and
// labels of changes close together are stacked, so each reads whole.
const leaderLines = {
  id: "leaderLines",
  afterDatasetsDraw(c, _args, options) {
    const { ctx, chartArea, scales } = c;
    const drawn = [];
    ctx.save();
    ctx.font = "12px system-ui, sans-serif";
    (options.changes || []).forEach((change, i) => {
      const x = scales.x.getPixelForValue(change.index);
      const text = "leader: " + modelName(change.model_id);
      const width = ctx.measureText(text).width;
      const left = x + 4 + width > chartArea.right ? x - 4 - width : x + 4;
      const y = chartArea.top + 12 + 14 * (i % 4);
      ctx.strokeStyle = "#424242";
      ctx.setLineDash([4, 4]);
      ctx.beginPath();
      ctx.moveTo(x, chartArea.top);
      ctx.lineTo(x, chartArea.bottom);
      ctx.stroke();
      ctx.fillStyle = "#424242";
      ctx.fillText(text, Math.max(left, chartArea.left), y);
      drawn.push({ text, left: Math.max(left, chartArea.left), right: Math.max(left, chartArea.left) + width, width: c.width });
    });
    ctx.restore();
    state.leaderLabels = drawn;
  },
};

function renderPerformance() {
  dropChart("performance");
  $("model-health-table").tBodies[0].replaceChildren();
  const name = $("performance-deployment").value;
  renderLeaderHistory(state.deployments.find((d) => d.name === name));
  const health = ((state.health && state.health.model_health) || []).find((h) => h.deployment === name);
  if (!health || !health.days) {
    note("performance-note", health && health.unavailable ? `No metrics yet: ${health.unavailable}` : "No metrics yet.");
    return;
  }
  const datasets = health.models.map((m, i) => ({
    type: "line", label: `${modelName(m.model_id)} · ${m.role}`, data: m.points.map((p) => p.value),
    borderColor: COLOURS[i % COLOURS.length], backgroundColor: COLOURS[i % COLOURS.length],
    spanGaps: true, modelId: m.model_id, yAxisID: "y",
  }));
  if (health.floor !== null && health.floor !== undefined) {
    datasets.push({ type: "line", label: `floor (${health.metric})`, data: health.days.map(() => health.floor),
      borderColor: BAD, borderDash: [6, 4], pointRadius: 0, isFloor: true, yAxisID: "y" });
  }
  health.models.forEach((m, i) => datasets.push({
    type: "bar", label: `outcomes · ${modelName(m.model_id)}`, data: m.points.map((p) => p.count),
    backgroundColor: COLOURS[i % COLOURS.length] + "33", yAxisID: "outcomes", isCount: true,
  }));
  const changes = health.leader_changes.map((c) => ({ ...c, index: health.days.indexOf(c.at.slice(0, 10)) }))
    .filter((c) => c.index >= 0);
  chart("performance", "performance-chart", {
    data: { labels: health.days, datasets },
    options: { maintainAspectRatio: false, animation: false,
      scales: { y: { title: { display: true, text: health.metric } },
        outcomes: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
          title: { display: true, text: "outcomes matured" } } },
      plugins: { leaderLines: { changes } } },
    plugins: [leaderLines],
  });
  note("performance-note", `${health.metric} per day of prediction time (lines) on the outcomes it rests on ` +
    `(bars); rolling over ${health.window_days} days against the floor. Dashed verticals: leader changes.`);
  renderModelHealth(health);
}

function renderLeaderHistory(d) {
  const list = $("leader-history");
  list.replaceChildren();
  for (const h of (d && d.leader_history) || []) {
    const item = element("li");
    item.append(element("strong", modelName(h.model_id), "leader"),
      ` made leader ${when(changedAt(h))} by ${h.actor}: ${h.reason}` +
      (h.policy && h.policy.name ? ` · policy ${policyText(h.policy)}` : "") +
      (h.previous ? ` · replaced ${modelName(h.previous)}` : ""));
    list.appendChild(item);
  }
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

// -- slices, in the order of their values (bins by their bounds, not as text) --------------
function sliceOrder(value) {
  const text = String(value).trim();
  const numbers = (text.match(/-?\d+(?:\.\d+)?(?:e[-+]?\d+)?/gi) || []).map(Number);
  if (!numbers.length) return [1, 0, 0, text];
  if (/^(<|≤|\(-inf)/i.test(text)) return [0, -Infinity, numbers[numbers.length - 1], text];
  return [0, numbers[0], numbers.length > 1 ? numbers[1] : numbers[0], text];
}

function compareSlices(a, b) {
  const x = sliceOrder(a), y = sliceOrder(b);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  return x[3].localeCompare(y[3]);
}
window.dashboard.compareSlices = compareSlices;

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
  const answer = await api("/v1/performance", { deployment, slice: feature });
  const metrics = answer.task === "regression" ? ["mae", "rmse"] : ["precision", "recall", "accuracy", "f1"];
  const head = table.tHead.insertRow();
  for (const title of [feature, "model", "count", ...metrics]) head.appendChild(element("th", title));
  const results = answer.results.filter((x) => x.slice_value !== null)
    .sort((a, b) => compareSlices(a.slice_value, b.slice_value) || modelName(a.model_id).localeCompare(modelName(b.model_id)));
  for (const r of results) {
    const row = table.tBodies[0].insertRow();
    cell(row, r.slice_value);
    cell(row, modelName(r.model_id));
    cell(row, r.count, "num");
    for (const m of metrics) cell(row, fmt(r[m]), "num");
  }
  note("slice-note", results.length ? "Counts are the matured outcomes each figure rests on." : "No matured outcomes in this window yet.");
}

// -- feeds: expected and received per period, shortfalls marked ---------------------------
function shortfall(feed, p) {
  const floor = p.expected * (1 - feed.tolerance);
  return p.closed && p.received < floor ? p.expected - p.received : 0;
}

function renderFeeds() {
  dropChart("feeds");
  $("feed-table").tBodies[0].replaceChildren();
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
  const body = $("feed-table").tBodies[0];
  for (const p of [...periods].reverse()) {
    const row = body.insertRow();
    const short = shortfall(feed, p);
    if (p.closed && p.flags.length) row.className = "bad";
    cell(row, when(p.start));
    cell(row, p.expected, "num");
    cell(row, p.received, "num");
    cell(row, short ? `−${short}` : "", "num");
    cell(row, !p.closed ? "open" : p.flags.length ? p.flags.join(", ") : "ok");
  }
  note("feed-note", `${feed.flagged_periods} of the closed periods shown are flagged (red); ` +
    `grey is the period still open. Tolerance ±${Math.round(feed.tolerance * 100)}%.`);
}

// -- drift and outliers --------------------------------------------------------------
function renderDrift() {
  dropChart("drift");
  const name = $("drift-deployment").value;
  const entry = ((state.health && state.health.deployments) || []).find((d) => d.name === name);
  $("drift-table").tBodies[0].replaceChildren();
  if (!entry) {
    note("drift-note", "No quality checks recorded for this deployment yet.");
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

// -- flagged predictions: each opens its provenance in place --------------------------------
function toggleInline(row, id) {
  const next = row.nextElementSibling;
  if (next && next.classList.contains("inline")) {
    next.remove();
    return;
  }
  const detail = row.parentElement.insertRow(row.sectionRowIndex + 1);
  detail.className = "inline";
  const td = detail.insertCell();
  td.colSpan = row.cells.length;
  const box = element("div", "Loading…", "provenance");
  box.dataset.predictionId = id;
  td.appendChild(box);
  detail.scrollIntoView({ block: "nearest" });
  showPrediction(id, box).then(() => box.scrollIntoView({ block: "nearest" }));
}

async function renderFlagged() {
  const body = $("flagged-table").tBodies[0];
  body.replaceChildren();
  const rows = [];
  const page = await api("/v1/predictions", { flagged: "true", limit: 20 });
  for (const p of page.items) rows.push([p.prediction_id, p.deployment, p.flags.join(", "), p.recorded_at]);
  for (const d of (state.health && state.health.deployments) || []) {
    for (const check of d.checks.slice(0, 3)) {  // window checks name the predictions their forest flagged
      const ids = (check.outliers || []).filter((id) => typeof id === "string").slice(0, 5);
      for (const id of ids) rows.push([id, d.name, `outlier (IsolationForest, ${check.key})`, check.recorded_at]);
    }
  }
  for (const [id, deployment, flags, at] of rows.slice(0, 40)) {
    const row = body.insertRow();
    const link = element("a", id.slice(0, 8) + "…", "lookup");
    link.href = "#";
    link.title = `${id}: open its provenance here`;
    link.addEventListener("click", (event) => { event.preventDefault(); toggleInline(row, id); });
    row.insertCell().appendChild(link);
    cell(row, deployment);
    cell(row, flags);
    cell(row, when(at));
  }
  note("flagged-note", rows.length ? "Click one to open its provenance here." : "No flagged predictions.");
}

// -- one prediction's provenance and its top reasons ---------------------------------------
function facts(p) {
  const served = p.served || {};
  return [["deployment", p.deployment], ["recorded at", when(p.recorded_at)], ["served by", modelName(served.model_id || "")],
    ["value", JSON.stringify(served.value)], ["policy", policyText(p.policy)],
    ["leader set by", p.leader && p.leader.set_by ? `${p.leader.set_by.actor}: ${p.leader.set_by.reason}` : null],
    ["flags", (p.flags || []).join(", ") || "none"], ["outcome", p.outcome ? JSON.stringify(p.outcome.actual) : "not yet"],
    ["chain", p.chain && p.chain.status]];
}

function summaryList(pairs) {
  const list = element("dl", undefined, "summary");
  for (const [term, value] of pairs) {
    list.appendChild(element("dt", term));
    list.appendChild(element("dd", value === null || value === undefined ? "—" : String(value)));
  }
  return list;
}

async function reasons(id) {
  const box = element("div", undefined, "reasons");
  let e;
  try {
    e = await api(`/v1/predictions/${encodeURIComponent(id)}/explanation`);
  } catch (error) {
    if (error instanceof Stale) throw error;
    const why = error.status === 403 ? "an auditor or admin key may read them" : error.message;
    box.appendChild(element("p", `Reasons not shown: ${why}.`, "note"));
    return box;
  }
  const top = [...e.contributions].sort((a, b) => Math.abs(b.contribution) - Math.abs(a.contribution)).slice(0, TOP_REASONS);
  box.appendChild(element("h3", `Top reasons, in ${e.unit}`));
  box.appendChild(element("p", `From the base value ${fmt(e.base_value)} to the output ${fmt(e.output)} ` +
    `(${e.method && e.method.explainer ? e.method.explainer : "exact"}); the largest contributions:`, "note"));
  const table = element("table", undefined, "reasons-table");
  const head = table.createTHead().insertRow();
  for (const title of ["feature", "value", `contribution (${e.unit})`]) head.appendChild(element("th", title));
  const body = table.createTBody();
  for (const c of top) {
    const row = body.insertRow();
    cell(row, c.feature);
    cell(row, c.personal ? "(personal)" : JSON.stringify(c.value));
    cell(row, (c.contribution > 0 ? "+" : "") + fmt(c.contribution), "num " + (c.contribution > 0 ? "up" : "down"));
  }
  box.appendChild(table);
  return box;
}

async function showPrediction(id, out) {
  out.replaceChildren(element("p", "Loading…", "note"));
  let p;
  try {
    p = await api(`/v1/predictions/${encodeURIComponent(id.trim())}`);
  } catch (error) {
    if (error instanceof Stale) return;
    out.replaceChildren(element("p", `Not shown: ${error.message}`, "note"));
    return;
  }
  let why;
  try {
    why = await reasons(p.prediction_id || id.trim());
  } catch (error) {
    return;  // stale: a newer view replaces this one
  }
  const pre = element("pre", JSON.stringify(p, null, 2));
  pre.className = "provenance-json";
  const details = element("details");
  details.append(element("summary", "The whole provenance (JSON)"), pre);
  const seen = element("p", state.asOf ? `As the ledger stood at ${when(state.asOf)}.` : "As the ledger stands now.", "note as-of-note");
  out.replaceChildren(seen, summaryList(facts(p)), why, details);
}

async function lookup(id) {
  state.lookupId = id || null;
  const out = $("lookup-result");
  if (!state.lookupId) {
    out.replaceChildren();
    return;
  }
  await showPrediction(state.lookupId, out);
  const pre = out.querySelector("pre");
  if (pre) pre.id = "lookup-json";
}

// -- loading, as_of and the key ------------------------------------------------------
async function refresh() {
  state.epoch += 1;
  const epoch = state.epoch;
  state.loaded = false;
  document.body.dataset.loaded = "false";
  emptyAll();
  note("status", "");
  await card("deployments-view", loadDeployments);
  let health = null;
  try {
    health = await api("/v1/data-health");
  } catch (error) {
    for (const cardId of ["performance-view", "feeds-view", "drift-view"]) refused(cardId, error);
  }
  if (epoch !== state.epoch) return;
  state.health = health;
  fillSliceFeatures();
  if (health) {
    await card("performance-view", renderPerformance);
    await card("feeds-view", renderFeeds);
    await card("drift-view", renderDrift);
  } else {
    renderLeaderHistory(state.deployments.find((d) => d.name === $("performance-deployment").value));
  }
  await Promise.all([
    card("slices-view", renderSlices), card("flagged-view", renderFlagged), card("lookup-view", () => lookup(state.lookupId)),
  ]);
  if (epoch !== state.epoch) return;
  state.loaded = true;
  document.body.dataset.loaded = "true";
}

function isoFromInput(value) {
  return new Date(value + "Z").toISOString().replace(".000Z", "Z");
}

function showAsOf() {
  const value = state.asOf;
  $("as-of-label").textContent = value ? `as of ${value}` : "now";
  $("as-of-label").className = value ? "badge past" : "badge";
  $("as-of-input").value = value ? value.replace(/Z$/, "").replace(/\.\d+$/, "") : "";
}

function setAsOf(value) {
  state.asOf = value;
  // in the fragment: the page's own route takes no query parameters, and the server never sees it
  const url = new URL(window.location.href);
  url.hash = value ? new URLSearchParams({ as_of: value }).toString() : "";
  window.history.replaceState(null, "", url.hash ? url : url.pathname);
  showAsOf();
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
  state.epoch += 1;  // answers still on their way were asked with the old key
  state.lookupId = null;
  $("lookup-id").value = "";
  emptyAll();
  showViews(false);
  note("status", reason || "");
  state.loaded = true;
  document.body.dataset.loaded = "true";
}

function wire() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_ITEM, $("key-input").value.trim());
    $("key-input").value = "";
    showViews(true);
    refresh();
  });
  $("forget-key").addEventListener("click", () => forgetKey("Key forgotten: paste another to open the dashboard."));
  $("as-of-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("as-of-input").value;
    if (value) setAsOf(isoFromInput(value));
  });
  $("as-of-now").addEventListener("click", () => setAsOf(null));
  $("performance-deployment").addEventListener("change", () => card("performance-view", renderPerformance));
  $("slice-deployment").addEventListener("change", () => { fillSliceFeatures(); card("slices-view", renderSlices); });
  $("slice-feature").addEventListener("change", () => card("slices-view", renderSlices));
  $("feed-select").addEventListener("change", () => card("feeds-view", renderFeeds));
  $("drift-deployment").addEventListener("change", () => card("drift-view", renderDrift));
  $("lookup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    card("lookup-view", () => lookup($("lookup-id").value.trim()));
  });
}

wire();
state.asOf = new URLSearchParams(window.location.hash.slice(1)).get("as_of") || null;
showAsOf();
if (sessionStorage.getItem(KEY_ITEM)) {
  showViews(true);
  refresh();
}
