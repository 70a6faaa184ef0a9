// The pages' words and clocks (edge/i18n): one catalogue per language, French by default.
// I18N.load() fetches /i18n/<lang>.json; I18N.t(key, {name: value}) gives a text;
// I18N.apply(root) fills [data-i18n] (text), [data-i18n-title], [data-i18n-placeholder]
// and [data-i18n-aria-label]; I18N.time(iso) is local time, I18N.timeTitle(iso) adds the
// offset (shown on hover); I18N.duration(s) says "4 min" or "1 h 05 min".
"use strict";
const I18N = (() => {
  let lang = "fr", words = {}, zone;
  const cookie = () => (document.cookie.match(/(?:^|; )lang=(fr|en)/) || [])[1];

  async function load(asked) {
    lang = asked || new URLSearchParams(location.search).get("lang") || cookie() || "fr";
    if (lang !== "fr" && lang !== "en") lang = "fr";
    const r = await fetch(`/i18n/${lang}.json`, {credentials: "same-origin"});
    const body = await r.json();
    words = body.words; zone = body.time_zone || undefined;
    document.documentElement.lang = lang;
    apply(document);
    return lang;
  }

  function t(key, vars) {
    const text = words[key];
    if (text === undefined) { console.warn("i18n: no text for", key); return key; }
    return vars ? text.replace(/\{([a-z_]+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m)) : text;
  }

  function apply(root) {
    root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    for (const attr of ["title", "placeholder", "aria-label"]) {
      const data = "i18n" + attr.replace(/(^|-)([a-z])/g, (m, d, c) => c.toUpperCase());
      root.querySelectorAll(`[data-i18n-${attr}]`).forEach((el) => el.setAttribute(attr, t(el.dataset[data])));
    }
  }

  function setLang(next) {
    document.cookie = `lang=${next}; path=/; max-age=31536000; SameSite=Strict`;
    const url = new URL(location.href); url.searchParams.delete("lang"); location.replace(url);
  }

  function parts(iso) {
    const d = iso instanceof Date ? iso : new Date(iso);
    return isNaN(d) ? null : d;
  }

  function time(iso, withDate = true) {
    const d = parts(iso);
    if (!d) return "—";
    const opts = {timeZone: zone, hour: "2-digit", minute: "2-digit", second: "2-digit"};
    if (withDate) Object.assign(opts, {day: "2-digit", month: "2-digit", year: "numeric"});
    return new Intl.DateTimeFormat(lang === "fr" ? "fr-FR" : "en-GB", opts).format(d);
  }

  function offset(d) {
    const name = new Intl.DateTimeFormat("en-GB", {timeZone: zone, timeZoneName: "longOffset"})
      .formatToParts(d).find((p) => p.type === "timeZoneName");
    return name ? name.value.replace("GMT", "UTC") : "UTC";
  }

  function timeTitle(iso) {
    const d = parts(iso);
    return d ? `${time(d)} ${offset(d)} (${d.toISOString()})` : "";
  }

  function timeHtml(iso, withDate = true) {
    const d = parts(iso);
    if (!d) return "—";
    return `<time datetime="${d.toISOString()}" title="${esc(timeTitle(d))}">${esc(time(d, withDate))}</time>`;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "—";
    let s = Math.max(0, Math.round(seconds));
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    s %= 60;
    const u = (k) => t("unit." + k);
    if (d) return `${d} ${u("d")} ${h} ${u("h")}`;
    if (h) return `${h} ${u("h")} ${String(m).padStart(2, "0")} ${u("min")}`;
    if (m) return `${m} ${u("min")}${s ? ` ${String(s).padStart(2, "0")} ${u("s")}` : ""}`;
    return `${s} ${u("s")}`;
  }

  function esc(text) {
    return String(text ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  }

  return {load, t, apply, setLang, time, timeTitle, timeHtml, duration, esc, get lang() { return lang; }};
})();
