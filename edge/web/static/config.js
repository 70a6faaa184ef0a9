"use strict";
// The config page: the running config (secrets redacted); a new one checked as
// `edge check-config` would, under the name the technician's file has, and applied only
// after a confirmation that says what happens: a restart, and a rollback if unhealthy.
async function showConfig() {
  const r = await api("GET", "/api/config");
  $("cfg-current").textContent = r.ok ? r.body.text : r.body.error;
  BOX.confirmS = r.ok ? r.body.confirm_s : null;
}

function chosen() {
  const file = $("cfg-file").files[0];
  $("cfg-problems").replaceChildren();
  if (!file) $("cfg-result").textContent = t("box.cfg.choose_first");
  return file;
}

function problems(name, list) {
  $("cfg-result").textContent = t("box.cfg.problems", {name});
  items("cfg-problems", list.map(p => el("li", {text: p})));
}

async function check() {
  const file = chosen();
  if (!file) return;
  const r = await api("POST", "/api/config/check", {text: await file.text(), name: file.name});
  if (r.status === 422) problems(file.name, r.body.problems);
  else $("cfg-result").textContent = r.ok ? t("box.cfg.valid", {name: file.name}) : r.body.error;
}

async function apply() {
  const file = chosen();
  if (!file) return;
  const text = await file.text();
  const checked = await api("POST", "/api/config/check", {text, name: file.name});
  if (checked.status === 422) { problems(file.name, checked.body.problems); return; }
  if (!checked.ok) { $("cfg-result").textContent = checked.body.error; return; }
  $("cfg-confirm-text").textContent = t("box.cfg.confirm_text",
    {name: file.name, confirm: dur(BOX.confirmS)});
  const dialog = $("cfg-confirm");
  dialog.returnValue = "";
  dialog.showModal();
  const answer = await new Promise(ok => dialog.addEventListener("close", () => ok(dialog.returnValue), {once: true}));
  if (answer !== "apply") { $("cfg-result").textContent = t("box.cfg.not_applied"); return; }
  const r = await api("POST", "/api/config/apply", {text, name: file.name});
  if (r.status === 422) problems(file.name, r.body.problems);
  else $("cfg-result").textContent = r.ok ? t("box.cfg.applied", {name: file.name,
    confirm: dur(r.body.confirm_s)}) : r.body.error;
}

PAGES.config = {
  init() {
    $("cfg-check").addEventListener("click", () => check().catch(fail));
    $("cfg-apply").addEventListener("click", () => apply().catch(fail));
  },
  show: showConfig,
};
PAGES.diagnostics = {};
