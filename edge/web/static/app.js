"use strict";
// The technician's page: one HTML document, a view per #hash, the JSON API behind each.
// This file: the API, helpers that turn figures into words, the header (box name and the
// verdict, pushed on every page by /api/status/stream), navigation. Each page's script
// (pages.js, camera.js, events.js, config.js) registers itself in PAGES as
// {show(), hide(), status(s)}: status(s) gets every status the stream pushes.
const PAGES = {};
const BOX = {csrf: null, status: null, zones: {}, heard: 0, page: null};
const STALE_MS = 5000;  // no status for this long: the badge says the box is silent
const $ = (id) => document.getElementById(id);
const t = (key, vars) => I18N.t(key, vars);

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = BOX.csrf || "";
  const r = await fetch(path, {method, headers, cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body)});
  if (r.status === 401) { location.href = "/login"; throw new Error("logged out"); }
  const answer = r.headers.get("Content-Type")?.startsWith("application/json") ? await r.json() : {};
  return {status: r.status, ok: r.ok, body: answer};
}

// -- building blocks ------------------------------------------------------------
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}
// A technical token (an address, a path, an id) may wrap after its separators, never
// inside a word: <wbr> after each / . : - _ @ ? & =.
function token(text) {
  const span = el("span", {class: "token"});
  for (const part of String(text ?? "").split(/(?<=[/.:\-_@?&=])/)) span.append(part, el("wbr"));
  return span;
}
function timeEl(iso, withDate = true) {
  const span = el("span");
  span.innerHTML = I18N.timeHtml(iso, withDate);  // escaped by I18N
  return span;
}
// A <dl> of [label key, value (text or node), name (data-key), the label's values].
function dl(id, pairs) {
  $(id).replaceChildren(...pairs.filter(p => p).flatMap(([key, value, name, vars]) => {
    const dd = el("dd", {"data-key": name || key.split(".").pop()});
    dd.append(value === null || value === undefined || value === "" ? "—" : value);
    return [el("dt", {text: t(key, vars)}), dd];
  }));
}
function items(id, nodes) { $(id).replaceChildren(...nodes); }
function bytes(n) {
  if (n === null || n === undefined) return null;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  const value = n.toLocaleString(I18N.lang, {maximumFractionDigits: i ? 1 : 0});
  return t("box.unit." + units[i], {n: value});
}
function number(n, digits = 0) {
  return n === null || n === undefined ? null : n.toLocaleString(I18N.lang, {maximumFractionDigits: digits});
}
function zoneName(id) {
  const z = BOX.zones[id];
  return z ? t("box.zone.label", {number: z.number, name: z.name}) : (id ? String(id) : t("box.zone.box"));
}
// A duration in words that never wraps between a number and its unit: 1 min 29 s.
function dur(seconds) { return I18N.duration(seconds).replace(/ /g, "\u00a0"); }
function values(v) {  // a verdict's placeholders, durations in words
  const out = {};
  for (const [k, x] of Object.entries(v || {})) out[k] = k.endsWith("_s") ? dur(x) : x;
  return out;
}
function say(v) { return t(v.key, values(v.values)); }
function fail(e) { $("err").textContent = t("box.page.no_answer", {error: String(e)}); }

// -- header: the box and its verdict, on every page --------------------------------
function renderHeader(s) {
  $("title").textContent = s.device.id;
  $("site").textContent = s.device.site;
  document.title = `${s.device.id} — ${t("box.title")}`;
  BOX.zones = Object.fromEntries(s.zones.zones.map(z => [z.id, z]));
  const health = $("health");
  health.dataset.level = s.verdict.level;
  health.dataset.key = s.verdict.key;
  $("verdict").textContent = say(s.verdict);
  const more = s.faults.length - 1;
  $("verdict-more").textContent = more > 0 ? t("box.health.more", {n: more}) : "";
  items("faults", s.faults.map(f => el("li", {"data-level": f.level}, say(f),
    f.values.error ? el("span", {class: "why"}, " ", t("box.health.why", {error: f.values.error})) : null)));
}
function checkStale() {
  if (!BOX.heard || Date.now() - BOX.heard < STALE_MS) return;
  const health = $("health");
  health.dataset.level = "stale";
  health.dataset.key = "box.health.silent";
  $("verdict").textContent = t("box.health.silent", {since: I18N.time(new Date(BOX.heard), false)});
  $("verdict-more").textContent = "";
}

let statusStream = null;
function startStatus() {
  if (statusStream) statusStream.close();
  statusStream = new EventSource("/api/status/stream");
  statusStream.onmessage = (m) => {
    BOX.heard = Date.now();
    const s = JSON.parse(m.data);
    BOX.status = s;
    renderHeader(s);
    $("err").textContent = "";
    PAGES[BOX.page]?.status?.(s);
  };
  statusStream.onerror = () => {
    if (statusStream.readyState !== EventSource.CLOSED) return;  // the browser retries itself
    setTimeout(async () => { await api("GET", "/api/session").catch(() => null); startStatus(); }, 2000);
  };
}

// -- navigation -----------------------------------------------------------------
function route() {
  const asked = (location.hash || "#overview").slice(1);
  const page = asked in PAGES ? asked : "overview";
  if (BOX.page && BOX.page !== page) PAGES[BOX.page]?.hide?.();
  BOX.page = page;
  for (const e of document.querySelectorAll(".page")) e.classList.toggle("hidden", e.id !== "page-" + page);
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("here", a.getAttribute("href") === "#" + page);
    if (a.getAttribute("href") === "#" + page) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  $("err").textContent = "";
  Promise.resolve(PAGES[page].show?.()).catch(fail);
  if (BOX.status) PAGES[page].status?.(BOX.status);
}

async function init() {
  await I18N.load();
  const {body} = await api("GET", "/api/session");
  BOX.csrf = body.csrf;
  $("lang").value = I18N.lang;
  $("lang").addEventListener("change", () => I18N.setLang($("lang").value));
  $("logout").addEventListener("click", async () => { await api("POST", "/api/logout"); location.href = "/login"; });
  for (const page of Object.values(PAGES)) page.init?.();
  window.addEventListener("hashchange", route);
  setInterval(checkStale, 1000);
  startStatus();
  route();
  document.body.dataset.ready = "1";
}
document.addEventListener("DOMContentLoaded", () => { init().catch(fail); });
