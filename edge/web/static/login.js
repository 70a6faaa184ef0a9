"use strict";
let setup = false;
async function init() {
  const r = await fetch("/api/login", {cache: "no-store"});
  const s = await r.json();
  setup = !s.password_set;
  document.getElementById("setup").classList.toggle("hidden", !setup);
  if (setup) document.getElementById("submit").textContent = "Set password and log in";
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
  err.textContent = answer.error || ("refused: " + r.status);
});
init();
