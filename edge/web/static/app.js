"use strict";
// The technician's page: one HTML document, a view per #hash, the JSON API behind each.
let csrf = null;
let maxDepth = 0;
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrf || "";
  const r = await fetch(path, {method, headers, cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body)});
  if (r.status === 401) { location.href = "/login"; throw new Error("logged out"); }
  const answer = r.headers.get("Content-Type")?.startsWith("application/json") ? await r.json() : {};
  return {status: r.status, ok: r.ok, body: answer};
}

function show(v) { return v === null || v === undefined ? "–" : String(v); }
function rows(id, obj) {
  $(id).replaceChildren(...Object.entries(obj).map(([k, v]) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th"); th.textContent = k;
    const td = document.createElement("td"); td.textContent = show(v); td.dataset.key = k;
    tr.append(th, td); return tr;
  }));
}
function cells(tr, values) {
  for (const v of values) { const td = document.createElement("td"); td.textContent = show(v); tr.append(td); }
}
function fmtBytes(n) {
  if (n === null || n === undefined) return null;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + units[i];
}

// -- overview ---------------------------------------------------------------
async function overview() {
  const {body: s} = await api("GET", "/api/status");
  $("title").textContent = "Edge gateway " + s.device.id;
  const h = $("health");
  h.className = s.healthy ? "ok" : "bad";
  h.textContent = s.healthy ? "healthy" : "problems: " + Object.values(s.problems).join("; ");
  rows("ov-box", {device: s.device.id, site: s.device.site, account: s.device.account,
    version: s.device.version, "uptime (s)": s.device.uptime_s,
    armed: Object.entries(s.zones.armed).map(([p, a]) => `partition ${p}: ${a ? "ARMED" : "disarmed"}`).join(", ") || "no armed-state zone"});
  const y = s.system || {};
  rows("ov-system", {"clock synchronised": y.clock_synchronized, "clock offset (ms)": y.clock_offset_ms,
    "CPU load (1 min)": y.load_1m === undefined ? null : y.load_1m.toFixed(2), "CPU temperature (°C)": y.cpu_temp_c,
    "oldest recording": y.oldest_recording_at,
    memory: y.memory_total_bytes ? `${fmtBytes(y.memory_used_bytes)} of ${fmtBytes(y.memory_total_bytes)}` : null,
    disk: y.disk_total_bytes ? `${fmtBytes(y.disk_used_bytes)} of ${fmtBytes(y.disk_total_bytes)}` : null,
    "retention (days)": y.retention_days});
  const u = s.uplink;
  rows("ov-uplink", {connected: u.connected, "connected since": u.connected_since, broker: u.broker,
    "last acknowledgement": u.last_ack_at, "supervision": `${u.profile}: heartbeat ${u.heartbeat_s} s, path loss after ${u.path_loss_s} s`,
    "margin (s)": u.margin_s, "last error": u.last_error});
  const o = s.outbox;
  rows("ov-outbox", {depth: o.depth, "oldest (s)": o.oldest_age_s, media: o.media, "media bytes": fmtBytes(o.media_bytes)});
  maxDepth = o.depth === 0 ? 0 : Math.max(maxDepth, o.peak_depth || 0, o.depth);
  $("ov-drain").value = maxDepth ? 1 - o.depth / maxDepth : 1;
  rows("ov-cameras", Object.fromEntries(Object.entries(s.cameras).map(([k, v]) => [k, `${v.state}, ${v.fps} fps`])));
}

// -- inputs (Server-Sent Events) --------------------------------------------
let stream = null;
function startStream() {
  if (stream) return;
  stream = new EventSource("/api/inputs/stream");
  stream.onopen = () => { $("in-live").textContent = "(live)"; };
  stream.onerror = () => { $("in-live").textContent = "(reconnecting…)"; };
  stream.onmessage = (m) => { const d = JSON.parse(m.data); renderInputs(d); renderWalk(d.walktest); };
}
function renderInputs(d) {
  $("in-armed").textContent = Object.entries(d.armed).map(([p, a]) => `partition ${p}: ${a ? "ARMED" : "disarmed"}`).join(", ") || "–";
  $("in-zones").querySelector("tbody").replaceChildren(...d.zones.map(z => {
    const tr = document.createElement("tr");
    tr.id = "zone-" + z.id;
    if (z.active) tr.className = "active";
    cells(tr, [z.id, z.name, z.type, z.active ? "ACTIVE" : "quiet", z.last_change_at, z.changes]);
    return tr;
  }));
}

// -- walk test --------------------------------------------------------------
function renderWalk(w) {
  const items = (id, list) => $(id).replaceChildren(...(list || []).map(z => {
    const li = document.createElement("li"); li.textContent = z; return li; }));
  if (!w || w.running === false) {
    $("wt-state").textContent = "No walk test running.";
    if (!lastWalk) { items("wt-seen", []); items("wt-missing", []); }  // else the summary's lists stay
    return;
  }
  lastWalk = null;
  $("wt-state").textContent = `Running, ${w.remaining_s} s left, ${w.activations} activation(s).`;
  items("wt-seen", w.seen); items("wt-missing", w.not_seen);
}
async function walkStart() {
  $("wt-summary").textContent = "";
  const r = await api("POST", "/api/walktest", {minutes: Number($("wt-minutes").value)});
  if (!r.ok) $("wt-summary").textContent = r.body.error;
}
let lastWalk = null;
async function walkStop() {
  const r = await api("DELETE", "/api/walktest");
  $("wt-summary").textContent = r.ok ? r.body.summary.text : r.body.error;
  if (r.ok) {
    lastWalk = r.body.summary;
    for (const [id, list] of [["wt-seen", lastWalk.seen], ["wt-missing", lastWalk.not_seen]]) {
      $(id).replaceChildren(...list.map(z => { const li = document.createElement("li"); li.textContent = z; return li; }));
    }
  }
}

// -- camera -----------------------------------------------------------------
let cams = [];
async function camera() {
  const {body} = await api("GET", "/api/cameras");
  cams = body.cameras;
  $("cam-none").classList.toggle("hidden", cams.length > 0);
  const views = $("cam-views");
  if (views.childElementCount !== cams.length) views.replaceChildren(...cams.map(cameraView));
  for (const c of cams) {
    const img = $("cam-img-" + c.id);
    img.src = `/api/cameras/${encodeURIComponent(c.id)}/frame?t=${Date.now()}`;
    drawOverlays($("cam-svg-" + c.id), c.overlays || {});
    $("cam-state-" + c.id).textContent = `${show(c.status.state)}, ${show(c.status.fps)} fps`;
  }
}
function cameraView(c) {
  const div = document.createElement("div");
  const h = document.createElement("h2"); h.textContent = c.id + " "; const st = document.createElement("small"); st.id = "cam-state-" + c.id; h.append(st);
  const box = document.createElement("div"); box.className = "camera";
  const img = document.createElement("img"); img.id = "cam-img-" + c.id; img.alt = "camera " + c.id;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg"); svg.id = "cam-svg-" + c.id;
  box.append(img, svg);
  const b = document.createElement("a"); b.textContent = "Snapshot (full size)"; b.id = "cam-snap-" + c.id;
  b.href = `/api/cameras/${encodeURIComponent(c.id)}/snapshot`; b.setAttribute("download", c.id + "-snapshot.jpg");
  div.append(h, box, b);
  return div;
}
function drawOverlays(svg, o) {
  const ns = "http://www.w3.org/2000/svg";
  if (o.width && o.height) svg.setAttribute("viewBox", `0 0 ${o.width} ${o.height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const shapes = [];
  const poly = (pts, cls, color, fill) => { const p = document.createElementNS(ns, "polygon");
    p.setAttribute("points", pts.map(q => q.join(",")).join(" ")); p.setAttribute("class", cls);
    p.setAttribute("stroke", color); p.setAttribute("fill", fill); p.setAttribute("stroke-width", "2"); return p; };
  for (const m of o.masks || []) shapes.push(poly(m, "mask", "#000", "rgba(0,0,0,.85)"));
  for (const a of o.ignored || []) shapes.push(poly(a.points, "ignored", "#888", "rgba(128,128,128,.35)"));
  for (const z of o.zones || []) {
    shapes.push(poly(z.points, "zone", "#2a7", "none"));
    const t = document.createElementNS(ns, "text"); t.textContent = z.name; t.setAttribute("class", "zone-name");
    t.setAttribute("x", z.points[0][0] + 4); t.setAttribute("y", z.points[0][1] + 16); t.setAttribute("fill", "#2a7");
    shapes.push(t);
  }
  for (const [x, y, w, hh] of o.motion || []) {
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", x); r.setAttribute("y", y); r.setAttribute("width", w); r.setAttribute("height", hh);
    r.setAttribute("class", "motion"); r.setAttribute("stroke", "#f33"); r.setAttribute("fill", "none"); r.setAttribute("stroke-width", "2");
    shapes.push(r);
  }
  svg.replaceChildren(...shapes);
}

// -- events -----------------------------------------------------------------
let evNext = null;  // the next (older) page's "before", null when there is none
async function events(older) {
  const q = new URLSearchParams();
  for (const [k, id] of [["kind", "ev-kind"], ["zone", "ev-zone"], ["state", "ev-state"]]) if ($(id).value) q.set(k, $(id).value);
  for (const [k, id] of [["since", "ev-since"], ["until", "ev-until"]]) if ($(id).value) q.set(k, new Date($(id).value).toISOString());
  const more = older === true && evNext !== null;
  if (more) q.set("before", evNext);
  const r = await api("GET", "/api/events?" + q);
  if (!r.ok) { $("err").textContent = r.body.error; return; }
  const rows = r.body.events.map(e => {
    const tr = document.createElement("tr"); tr.dataset.id = e.id;
    cells(tr, [e.seq, e.occurred_at, e.kind, e.cid, e.sia, e.zone, e.state, e.sent_at, e.acked_at, e.text]);
    return tr;
  });
  const body = $("ev-table").querySelector("tbody");
  if (more) body.append(...rows); else body.replaceChildren(...rows);
  evNext = r.body.next_before;
  $("ev-older").disabled = evNext === null;
  const c = r.body.counts;
  const where = r.body.source === "memory" ? " (its file is not in use: only the events kept in memory)" : "";
  $("ev-counts").textContent = `${c.queued} queued, ${c.sent} sent, ${c.acked} acknowledged in the journal${where}`;
}
async function testEvent() {
  const r = await api("POST", "/api/events/test");
  $("ev-sent").textContent = r.ok ? "sent: " + r.body.id : r.body.error;
  await events();
}

// -- config -----------------------------------------------------------------
async function config() {
  const r = await api("GET", "/api/config");
  $("cfg-current").textContent = r.ok ? r.body.text : r.body.error;
}
async function configSend(path) {
  const file = $("cfg-file").files[0];
  $("cfg-problems").replaceChildren();
  if (!file) { $("cfg-result").textContent = "choose a file first"; return; }
  const r = await api("POST", path, {text: await file.text()});
  if (r.status === 422) {
    $("cfg-result").textContent = "The config has problems; nothing was changed:";
    $("cfg-problems").replaceChildren(...r.body.problems.map(p => { const li = document.createElement("li"); li.textContent = p; return li; }));
  } else if (r.ok) {
    $("cfg-result").textContent = path.endsWith("apply") ? (r.body.message || "applying…") : "The config is valid.";
  } else {
    $("cfg-result").textContent = r.body.error || ("refused: " + r.status);
  }
}

// -- navigation -------------------------------------------------------------
const PAGES = {overview, inputs: null, walktest: null, camera, events, config, diagnostics: null};
let timer = null;
function route() {
  const name = (location.hash || "#overview").slice(1);
  const page = name in PAGES ? name : "overview";
  for (const el of document.querySelectorAll(".page")) el.classList.toggle("hidden", el.id !== "page-" + page);
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("here", a.getAttribute("href") === "#" + page);
  clearInterval(timer);
  const fn = PAGES[page];
  const run = () => fn().then(() => { $("err").textContent = ""; }).catch(e => { $("err").textContent = "box not answering: " + e; });
  if (fn) { run(); if (page === "overview" || page === "camera") timer = setInterval(run, 1000); }
}

async function init() {
  const {body} = await api("GET", "/api/session");
  csrf = body.csrf;
  $("logout").addEventListener("click", async () => { await api("POST", "/api/logout"); location.href = "/login"; });
  $("wt-start").addEventListener("click", walkStart);
  $("wt-stop").addEventListener("click", walkStop);
  $("ev-refresh").addEventListener("click", () => events());
  $("ev-older").addEventListener("click", () => events(true));
  $("ev-test").addEventListener("click", testEvent);
  $("cfg-check").addEventListener("click", () => configSend("/api/config/check"));
  $("cfg-apply").addEventListener("click", () => configSend("/api/config/apply"));
  window.addEventListener("hashchange", route);
  startStream();
  route();
  document.body.dataset.ready = "1";
}
init();
