// The main courante, printable: per shift, period, site or operator; and its CSV export.
"use strict";

let after = null;

function query() {
  const p = new URLSearchParams();
  const shift = document.getElementById("shift").value;
  if (shift === "period") {
    for (const name of ["since", "until"]) {
      const value = document.getElementById(name).value;
      if (value) p.set(name, new Date(value).toISOString());
    }
  } else p.set("shift", shift);
  for (const name of ["site", "operator"]) {
    const value = document.getElementById(name).value.trim();
    if (value) p.set(name, value);
  }
  p.set("lang", I18N.lang);
  return p;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

async function show(more) {
  const p = query();
  if (more && after) p.set("after", after);
  const r = await fetch("/api/courante?" + p);
  if (r.status === 401) { location.href = "/login?next=/courante"; return; }
  const body = await r.json();
  const tbody = document.querySelector("#lines tbody");
  if (!more) tbody.replaceChildren();
  for (const e of body.entries) {
    const tr = document.createElement("tr");
    tr.dataset.action = e.action;
    const at = cell("");
    at.innerHTML = I18N.timeHtml(new Date(e.at_ms));
    tr.append(at, cell(e.operator || I18N.t("station.courante.system")), cell(e.site),
      cell(e.words + (e.corrects ? " " + I18N.t("station.log.corrects", {n: e.corrects}) : "")),
      cell(e.text), cell(String(e.id), "id"));
    tbody.append(tr);
  }
  after = body.after;
  document.getElementById("more").hidden = !after;
  document.getElementById("none").hidden = tbody.children.length > 0;
  const range = I18N.t("station.courante.range", {since: I18N.time(new Date(body.since_ms)),
    until: body.until_ms < 4e15 ? I18N.time(new Date(body.until_ms)) : "…"});
  document.getElementById("range").textContent = range;
  document.getElementById("heading").textContent = I18N.t("station.courante.title");
  p.delete("after");
  document.getElementById("csv").href = "/api/courante.csv?" + p;
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", async () => {
  await I18N.load();
  const shift = document.getElementById("shift");
  const periods = () => document.querySelectorAll(".period").forEach((n) => { n.hidden = shift.value !== "period"; });
  shift.onchange = periods;
  periods();
  document.getElementById("filters").onsubmit = (e) => { e.preventDefault(); show(false); };
  document.getElementById("print").onclick = () => window.print();
  document.getElementById("more").onclick = () => show(true);
  const given = new URLSearchParams(location.search);
  for (const name of ["site", "operator"]) if (given.get(name)) document.getElementById(name).value = given.get(name);
  await show(false);
});
