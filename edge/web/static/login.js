"use strict";
// The login page, in the page's language; the box's refusals said in words.
let setup = false;
async function init() {
  await I18N.load();
  document.title = I18N.t("box.title");
  const lang = document.getElementById("lang");
  lang.value = I18N.lang;
  lang.addEventListener("change", () => I18N.setLang(lang.value));
  const r = await fetch("/api/login", {cache: "no-store"});
  const s = await r.json();
  setup = !s.password_set;
  document.getElementById("setup").classList.toggle("hidden", !setup);
  if (setup) document.getElementById("submit").textContent = I18N.t("box.login.set_and_log_in");
}
function refusal(r, answer) {
  if (r.status === 401) return I18N.t(setup ? "box.login.wrong_code" : "box.login.wrong_password");
  if (r.status === 400 && setup) return I18N.t("box.login.rules");
  if (r.status === 429) return I18N.t("box.login.locked", {wait: I18N.duration(Number(r.headers.get("Retry-After")))});
  return I18N.t("common.error", {message: answer.error || r.statusText});
}
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const err = document.getElementById("err");
  err.textContent = "";
  const password = document.getElementById("password").value;
  const body = setup ? {code: document.getElementById("code").value, password} : {password};
  const r = await fetch(setup ? "/api/setup" : "/api/login", {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  });
  if (r.ok) { location.href = "/"; return; }
  const answer = await r.json().catch(() => ({error: r.statusText}));
  err.dataset.status = String(r.status);
  err.textContent = refusal(r, answer);
});
init();
