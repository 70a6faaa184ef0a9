// The operator's workstation: the queue of incidents, pushed live (Server-Sent Events).
// detail.js shows one incident and its handling; admin.js the supervisor's views.
// Every word comes from the catalogue (I18N.t); every state change sends the session's
// CSRF token.
"use strict";

const WS = {
  me: null, csrf: null, escalateS: 60, commands: false,
  incidents: new Map(),  // id -> queue row (open incidents known to this page)
  version: 0, skewMs: 0, selected: null, stream: null, open: 0, unheld: 0,
  muted: false, audio: null, alerted: new Set(), escalatedSeen: new Set(),
};

const CATEGORY = {
  fire: "station.category.fire", panic: "station.category.panic",
  intrusion: "station.category.intrusion", tamper: "station.category.tamper",
  technical: "station.category.technical", device_lost: "station.category.device_lost",
};
const KIND = {
  alarm: "station.kind.alarm", restore: "station.kind.restore", tamper: "station.kind.tamper",
  tamper_restore: "station.kind.tamper_restore", trouble: "station.kind.trouble",
  trouble_restore: "station.kind.trouble_restore", arm: "station.kind.arm",
  disarm: "station.kind.disarm", test: "station.kind.test", motion: "station.kind.motion",
  device_lost: "station.kind.device_lost",
};
const ERRORS = {
  held: "station.error.held", not_holder: "station.error.not_holder",
  closed: "station.error.closed", no_outcome: "station.error.no_outcome",
  not_restored: "station.error.not_restored", no_incident: "station.error.no_incident",
  no_operator: "station.error.no_operator", bad_text: "station.error.bad_text",
  bad_outcome: "station.error.bad_outcome", bad_request: "station.error.bad_request",
  bad_step: "station.error.bad_request", no_broker: "station.error.no_broker",
  not_sent: "station.error.not_sent", invalid_site: "station.error.invalid_site",
  no_site: "station.error.no_site",
};

// -- small helpers shared by the three scripts -------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "html") node.innerHTML = value;  // only I18N.timeHtml's escaped output
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const t = (key, vars) => I18N.t(key, vars);
const when = (ms, withDate = true) => el("span", {class: "when", html: I18N.timeHtml(new Date(ms), withDate)});
const serverNow = () => Date.now() + WS.skewMs;

async function api(url, options) {
  const r = await fetch(url, options);
  if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); throw new Error("401"); }
  return r;
}

async function post(url, body) {
  const r = await api(url, {method: "POST", body: JSON.stringify(body || {}),
    headers: {"Content-Type": "application/json", "X-CSRF-Token": WS.csrf || ""}});
  let data = {};
  try { data = await r.json(); } catch (e) { data = {}; }
  if (!r.ok) { showError(data); return null; }
  return data;
}

function errorText(data) {
  const key = ERRORS[data.error] || "station.error.unknown";
  return t(key, {holder: data.holder || "", unrestored: data.unrestored || ""});
}

function showError(data) {
  banner(errorText(data), "error");
  if (data.problems) banner(errorText(data) + " " + data.problems.join(" · "), "error");
}

function banner(text, kind) {
  const node = document.getElementById("banner");
  node.textContent = text;
  node.className = kind || "";
  node.hidden = false;
  clearTimeout(banner.timer);
  banner.timer = setTimeout(() => { node.hidden = true; }, kind === "error" ? 10000 : 8000);
}

// -- alerts: sound (muted per operator, remembered) and sight ---------------------------------

function muteKey() { return "ws-muted:" + (WS.me || ""); }

function showMute() {
  const button = document.getElementById("mute");
  button.textContent = t(WS.muted ? "station.sound.off" : "station.sound.on");
  button.setAttribute("aria-pressed", WS.muted ? "true" : "false");
  button.classList.toggle("muted", WS.muted);
}

function unlockAudio() {
  if (!WS.audio && window.AudioContext) WS.audio = new AudioContext();
  if (WS.audio && WS.audio.state === "suspended") WS.audio.resume();
}

function beep(times) {
  document.body.dataset.beeps = String(Number(document.body.dataset.beeps || 0) + 1);
  if (WS.muted || !WS.audio) return;
  const start = WS.audio.currentTime;
  for (let i = 0; i < times; i++) {
    const osc = WS.audio.createOscillator(), gain = WS.audio.createGain();
    osc.frequency.value = i % 2 ? 660 : 880;
    gain.gain.setValueAtTime(0.2, start + i * 0.3);
    gain.gain.setValueAtTime(0, start + i * 0.3 + 0.2);
    osc.connect(gain).connect(WS.audio.destination);
    osc.start(start + i * 0.3);
    osc.stop(start + i * 0.3 + 0.22);
  }
}

function alertNew(row) {
  if (WS.alerted.has(row.id)) return;
  WS.alerted.add(row.id);
  beep(row.priority <= 2 ? 3 : 1);
  banner(t("station.alert.new", {category: t(CATEGORY[row.category]), site: row.site}), "alert");
  document.getElementById("top").classList.add("flash");
  setTimeout(() => document.getElementById("top").classList.remove("flash"), 3000);
}

// -- the queue ---------------------------------------------------------------------------

function isEscalated(row) {
  return !row.holder && !row.closed && serverNow() - row.waiting_ms >= WS.escalateS * 1000;
}

function mediaText(m) {
  if (!m.expected) return t("station.queue.no_media");
  if (m.ready + m.lost >= m.expected) return t("station.queue.media_ready", {ready: m.ready, expected: m.expected});
  return t("station.queue.media_pending", {ready: m.ready, expected: m.expected});
}

function queueItem(row) {
  const top = row.top;
  const classes = ["incident", "p" + row.priority, "cat-" + row.category];
  if (row.holder) classes.push("held");
  if (isEscalated(row)) classes.push("escalated");
  if (row.holder === WS.me) classes.push("mine");
  if (row.id === WS.selected) classes.push("sel");
  const li = el("li", {id: "inc-" + row.id, class: classes.join(" "), tabindex: "0", dataset: {id: row.id},
                       onclick: () => openIncident(row.id),
                       onkeydown: (e) => { if (e.key === "Enter") openIncident(row.id); }},
    el("div", {class: "line1"},
      el("b", {class: "category", text: t(CATEGORY[row.category])}),
      el("span", {class: "site", text: row.site}),
      el("span", {class: "age", dataset: {since: row.opened_ms}, text: I18N.duration((serverNow() - row.opened_ms) / 1000)})),
    el("div", {class: "line2"},
      el("span", {class: "zone", text: top.zone || top.device}),
      el("span", {class: "kind", text: t(KIND[top.kind] || "station.kind.alarm")}),
      row.alarms > 1 ? el("span", {class: "count", text: t("station.queue.alarms", {n: row.alarms})}) : null,
      top.historical ? el("span", {class: "badge late", text: t("station.alarm.late")}) : null,
      row.unrestored === 0 ? el("span", {class: "badge ok", text: t("station.alarm.restored")}) : null),
    el("div", {class: "line3"},
      el("span", {class: "media", text: mediaText(row.media)}),
      el("span", {class: "holder", text: row.holder ? t("station.queue.held_by", {holder: row.holder}) : t("station.queue.free")}),
      isEscalated(row) ? el("span", {class: "badge escalation", text: t("station.queue.escalated")}) : null));
  return li;
}

function sortedRows() {
  return [...WS.incidents.values()].sort((a, b) =>
    a.priority - b.priority || a.opened_ms - b.opened_ms || (a.id < b.id ? -1 : 1));
}

function renderQueue() {
  const list = document.getElementById("queue");
  const rows = sortedRows().slice(0, 300);
  list.replaceChildren(...rows.map(queueItem));
  const open = Math.max(WS.open, WS.incidents.size);
  document.getElementById("queue-count").textContent = t("station.queue.count", {open, unheld: [...WS.incidents.values()].filter((r) => !r.holder).length});
  document.getElementById("queue-empty").hidden = WS.incidents.size > 0;
  const unheld = rows.filter((r) => !r.holder).length;
  document.title = (unheld ? `(${unheld}) ` : "") + t("station.title");
  Admin.queueChanged();
}

function tick() {
  for (const span of document.querySelectorAll("#queue .age")) {
    span.textContent = I18N.duration((serverNow() - Number(span.dataset.since)) / 1000);
  }
  for (const row of WS.incidents.values()) {
    const node = document.getElementById("inc-" + row.id);
    const escalated = isEscalated(row);
    if (node && escalated !== node.classList.contains("escalated")) node.replaceWith(queueItem(row));
    if (escalated && !WS.escalatedSeen.has(row.id)) {
      WS.escalatedSeen.add(row.id);
      beep(2);
      banner(t("station.alert.escalated", {category: t(CATEGORY[row.category]), site: row.site}), "alert");
    }
  }
  Detail.tick();
}

function apply(changes) {
  if (changes.reload) { loadQueue(); return; }
  if (changes.now_ms) WS.skewMs = changes.now_ms - Date.now();
  let touchedSelected = false;
  for (const row of changes.rows || []) {
    const known = WS.incidents.has(row.id);
    if (row.closed) WS.incidents.delete(row.id);
    else {
      WS.incidents.set(row.id, row);
      if (!known && row.v > WS.version) alertNew(row);
    }
    if (row.id === WS.selected) touchedSelected = true;
  }
  WS.version = Math.max(WS.version, changes.v || 0);
  renderQueue();
  if (touchedSelected) Detail.refresh();
}

async function loadQueue() {
  const r = await api("/api/queue");
  const body = await r.json();
  WS.skewMs = body.now_ms - Date.now();
  WS.incidents = new Map(body.rows.map((row) => [row.id, row]));
  for (const row of body.rows) WS.alerted.add(row.id);  // there before: no alert
  WS.version = body.v;
  WS.open = body.open;
  renderQueue();
}

function connect() {
  if (WS.stream) WS.stream.close();
  const stream = new EventSource("/api/stream?since=" + WS.version);
  WS.stream = stream;
  stream.onopen = () => { setLink(true); };
  stream.onmessage = (m) => { apply(JSON.parse(m.data)); };
  stream.onerror = () => {
    setLink(false);
    if (stream.readyState === EventSource.CLOSED) setTimeout(async () => { await loadQueue(); connect(); }, 2000);
  };
}

function setLink(up) {
  const node = document.getElementById("link-state");
  node.textContent = t(up ? "station.link.up" : "station.link.down");
  node.className = "chip " + (up ? "ok" : "bad");
}

function openIncident(id) {
  WS.selected = id;
  for (const li of document.querySelectorAll("#queue li")) li.classList.toggle("sel", li.dataset.id === id);
  document.body.classList.add("reading");
  Detail.open(id);
}

function showTab(name) {
  for (const tab of ["queue", "supervision", "sites"]) {
    document.getElementById("tab-" + tab).classList.toggle("on", tab === name);
  }
  document.getElementById("main").hidden = name !== "queue";
  document.getElementById("supervision").hidden = name !== "supervision";
  document.getElementById("sites").hidden = name !== "sites";
  if (name !== "queue") Admin.show(name);
}

async function start() {
  const me = await fetch("/api/session");
  if (me.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); return; }
  const session = await me.json();
  await I18N.load();
  Object.assign(WS, {me: session.operator, csrf: session.csrf, escalateS: session.escalate_s,
                     commands: session.commands, role: session.role});
  WS.muted = localStorage.getItem(muteKey()) === "1";
  document.getElementById("who").textContent = t("station.who", {name: session.operator, role: t(session.role === "supervisor" ? "station.role.supervisor" : "station.role.operator")});
  document.getElementById("lang").value = I18N.lang;
  const supervisor = session.role === "supervisor";
  document.getElementById("tab-supervision").hidden = !supervisor;
  document.getElementById("tab-sites").hidden = !supervisor;
  showMute();
  document.getElementById("mute").onclick = () => {
    WS.muted = !WS.muted;
    localStorage.setItem(muteKey(), WS.muted ? "1" : "0");
    showMute();
  };
  document.getElementById("lang").onchange = (e) => I18N.setLang(e.target.value);
  document.getElementById("logout").onclick = async () => { await post("/api/logout", {}); location.href = "/login"; };
  document.getElementById("tab-queue").onclick = () => showTab("queue");
  document.getElementById("tab-supervision").onclick = () => showTab("supervision");
  document.getElementById("tab-sites").onclick = () => showTab("sites");
  for (const kind of ["click", "keydown"]) document.addEventListener(kind, unlockAudio, {passive: true});
  await loadQueue();
  connect();
  setInterval(tick, 1000);
  const linked = location.pathname.match(/^\/events\/(.+)$/);  // a DC-09 video reference
  if (linked) {
    const r = await api("/api/events/" + encodeURIComponent(decodeURIComponent(linked[1])) + "/incident");
    if (r.ok) openIncident((await r.json()).incident);
  }
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", start);
