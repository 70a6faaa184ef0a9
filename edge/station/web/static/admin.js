// The supervisor's views: who handles what (and who is logged in), and the sites (name,
// address, coordinates, instructions per alarm category, the call list, the boxes).
"use strict";

const Admin = (() => {
  const FIELDS = ["fire", "panic", "intrusion", "tamper", "technical", "device_lost", "default"];
  const FIELD_LABEL = {
    fire: "station.category.fire", panic: "station.category.panic",
    intrusion: "station.category.intrusion", tamper: "station.category.tamper",
    technical: "station.category.technical", device_lost: "station.category.device_lost",
    default: "station.sites.default_steps",
  };
  const ROLES = ["keyholder", "guard", "police", "fire_brigade", "technician", "customer", "other"];
  const ROLE_LABEL = {
    keyholder: "station.contact.keyholder", guard: "station.contact.guard",
    police: "station.contact.police", fire_brigade: "station.contact.fire_brigade",
    technician: "station.contact.technician", customer: "station.contact.customer",
    other: "station.contact.other",
  };
  let current = null;

  async function show(name) {
    current = name;
    if (name === "supervision") await supervision();
    else await sites();
  }

  function queueChanged() {
    if (current === "supervision" && !document.getElementById("supervision").hidden) supervision();
  }

  // -- who handles what -----------------------------------------------------------

  async function supervision() {
    const r = await api("/api/holders");
    if (!r.ok) return;
    const body = await r.json();
    const rows = sortedRows();
    const free = rows.filter((row) => !row.holder);
    const byHolder = new Map();
    for (const h of body.holding) {
      if (!byHolder.has(h.holder)) byHolder.set(h.holder, []);
      byHolder.get(h.holder).push(h);
    }
    const people = new Set([...body.logged_in.map((s) => s.operator), ...byHolder.keys()]);
    const logged = new Map(body.logged_in.map((s) => [s.operator, s]));
    document.getElementById("supervision").replaceChildren(
      el("h2", {text: t("station.supervision.title")}),
      el("p", {id: "sup-summary", text: t("station.supervision.summary", {open: rows.length, free: free.length,
        escalated: rows.filter(isEscalated).length})}),
      el("table", {id: "handlers", class: "table"},
        el("thead", {}, el("tr", {}, el("th", {text: t("station.supervision.operator")}),
          el("th", {text: t("station.supervision.since")}), el("th", {text: t("station.supervision.holds")}))),
        el("tbody", {}, ...[...people].sort().map((name) => {
          const s = logged.get(name);
          const held = byHolder.get(name) || [];
          return el("tr", {dataset: {operator: name}},
            el("td", {}, el("b", {text: name}), " ", s ? t(s.role === "supervisor" ? "station.role.supervisor" : "station.role.operator") : t("station.supervision.away")),
            el("td", {}, s ? when(s.login_ms, false) : "—"),
            el("td", {}, held.length ? el("ul", {}, ...held.map((h) => el("li", {},
              el("a", {href: "#", text: `${t(CATEGORY[h.category])} · ${h.site}`, onclick: (e) => { e.preventDefault(); showTab("queue"); openIncident(h.id); }}),
              " ", when(h.held_ms, false)))) : t("common.none")));
        }))),
      el("h3", {text: t("station.supervision.free")}),
      el("ul", {id: "free-list"}, ...free.map((row) => el("li", {class: isEscalated(row) ? "escalated" : ""},
        el("a", {href: "#", text: `${t(CATEGORY[row.category])} · ${row.site}`, onclick: (e) => { e.preventDefault(); showTab("queue"); openIncident(row.id); }}),
        " ", I18N.duration((serverNow() - row.opened_ms) / 1000)))));
  }

  // -- sites -------------------------------------------------------------------------

  async function sites() {
    const r = await api("/api/sites");
    if (!r.ok) return;
    const list = await r.json();
    document.getElementById("sites").replaceChildren(
      el("h2", {text: t("station.sites.title")}),
      el("div", {class: "buttons"}, el("button", {type: "button", id: "site-new", text: t("station.sites.new"), onclick: () => form(null)})),
      el("ul", {id: "site-list"}, ...list.map((s) => el("li", {dataset: {id: s.id}},
        el("b", {text: s.name}), " ", el("span", {class: "id", text: s.id}), " · ", s.address || "",
        " · ", t("station.sites.boxes", {boxes: s.devices.join(", ") || "—"}), " ",
        el("button", {type: "button", class: "edit", text: t("station.sites.edit"), onclick: () => edit(s.id)})))),
      el("div", {id: "site-form"}));
  }

  async function edit(siteId) {
    const r = await api("/api/sites/" + encodeURIComponent(siteId));
    if (r.ok) form(await r.json());
  }

  function input(id, label, value, attrs) {
    return el("label", {class: "field"}, el("span", {text: t(label)}),
      el("input", {id, value: value === null || value === undefined ? "" : String(value), ...(attrs || {})}));
  }

  function contactRow(c) {
    return el("div", {class: "contact-row"},
      el("input", {class: "c-name", value: c.name || "", "aria-label": t("station.sites.contact_name"), placeholder: t("station.sites.contact_name")}),
      el("select", {class: "c-role", "aria-label": t("station.sites.contact_role")}, ...ROLES.map((role) =>
        el("option", {value: role, selected: role === c.role, text: t(ROLE_LABEL[role])}))),
      el("input", {class: "c-phone", value: c.phone || "", "aria-label": t("station.sites.contact_phone"), placeholder: t("station.sites.contact_phone")}),
      el("input", {class: "c-note", value: c.note || "", "aria-label": t("station.sites.contact_note"), placeholder: t("station.sites.contact_note")}),
      el("button", {type: "button", class: "c-remove", text: t("station.sites.remove_contact"), onclick: (e) => e.target.parentElement.remove()}));
  }

  function form(site) {
    const s = site || {id: "", name: "", address: "", latitude: null, longitude: null, devices: [], instructions: {}, contacts: [], notes: ""};
    const contacts = el("div", {id: "contacts"}, ...s.contacts.map(contactRow));
    document.getElementById("site-form").replaceChildren(el("form", {id: "site-edit", onsubmit: (e) => { e.preventDefault(); save(!!site); }},
      el("h3", {text: t(site ? "station.sites.edit_title" : "station.sites.new_title")}),
      input("s-id", "station.sites.id", s.id, site ? {readonly: true} : {}),
      input("s-name", "station.sites.name", s.name),
      input("s-address", "station.sites.address", s.address),
      el("div", {class: "row"}, input("s-lat", "station.sites.latitude", s.latitude, {inputmode: "decimal"}),
        input("s-lon", "station.sites.longitude", s.longitude, {inputmode: "decimal"})),
      input("s-devices", "station.sites.devices", s.devices.join(", ")),
      el("label", {class: "field"}, el("span", {text: t("station.sites.notes")}), el("textarea", {id: "s-notes", rows: "2", text: s.notes || ""})),
      el("h4", {text: t("station.steps.title")}), el("p", {class: "hint", text: t("station.sites.steps_hint")}),
      ...FIELDS.map((f) => el("label", {class: "field"}, el("span", {text: t(FIELD_LABEL[f])}),
        el("textarea", {id: "s-steps-" + f, rows: "3", text: (s.instructions[f] || []).join("\n")}))),
      el("h4", {text: t("station.calls.title")}), contacts,
      el("button", {type: "button", id: "add-contact", text: t("station.sites.add_contact"), onclick: () => contacts.append(contactRow({role: "keyholder"}))}),
      el("div", {id: "site-errors", role: "alert"}),
      el("div", {class: "buttons"},
        el("button", {type: "submit", id: "site-save", class: "primary", text: t("common.save")}),
        site ? el("button", {type: "button", id: "site-remove", text: t("station.sites.remove"), onclick: () => remove(s.id)}) : null)));
  }

  function number(id) {
    const text = document.getElementById(id).value.trim().replace(",", ".");
    return text === "" ? null : Number(text);
  }

  async function save() {
    const value = (id) => document.getElementById(id).value;
    const instructions = {};
    for (const f of FIELDS) {
      const steps = value("s-steps-" + f).split("\n").map((x) => x.trim()).filter(Boolean);
      if (steps.length) instructions[f] = steps;
    }
    const site = {
      id: value("s-id").trim(), name: value("s-name"), address: value("s-address"),
      latitude: number("s-lat"), longitude: number("s-lon"),
      devices: value("s-devices").split(/[,\s]+/).filter(Boolean), notes: value("s-notes"), instructions,
      contacts: [...document.querySelectorAll("#contacts .contact-row")].map((row) => ({
        name: row.querySelector(".c-name").value, role: row.querySelector(".c-role").value,
        phone: row.querySelector(".c-phone").value, note: row.querySelector(".c-note").value})),
    };
    const r = await api("/api/sites", {method: "POST", body: JSON.stringify(site),
      headers: {"Content-Type": "application/json", "X-CSRF-Token": WS.csrf || ""}});
    const body = await r.json();
    if (!r.ok) {
      document.getElementById("site-errors").replaceChildren(el("p", {text: t("station.error.invalid_site")}),
        el("ul", {}, ...(body.problems || []).map((p) => el("li", {class: "id", text: p}))));
      return;
    }
    banner(t("station.sites.saved", {name: site.name}), "ok");
    await sites();
  }

  async function remove(siteId) {
    if (await post("/api/sites/" + encodeURIComponent(siteId) + "/remove", {})) await sites();
  }

  return {show, queueChanged};
})();
