"use strict";
// The events page: the journal, newest first, live (the pushed status says when it
// changed), each event in words with its delivery state, its codes on demand and the
// stills and clips the box still has.
const KINDS = ["alarm", "restore", "tamper", "tamper_restore", "trouble", "trouble_restore",
  "arm", "disarm", "test", "motion"];
let evNext = null;  // the next (older) page's "before", null when there is none
let evPaged = false;  // older pages shown: new events wait for the technician
let evChanges = null;
let evTimer = null;

function evQuery(older) {
  const q = new URLSearchParams();
  for (const [k, id] of [["kind", "ev-kind"], ["zone", "ev-zone"], ["state", "ev-state"]]) {
    if ($(id).value) q.set(k, $(id).value);
  }
  const period = Number($("ev-period").value);
  if (period) q.set("since", new Date(Date.now() - period * 1000).toISOString());
  if (older && evNext !== null) q.set("before", evNext);
  return q;
}

async function events(older) {
  const more = older === true && evNext !== null;
  const r = await api("GET", "/api/events?" + evQuery(more));
  if (!r.ok) { $("err").textContent = r.body.error; return; }
  const cards = r.body.events.map(eventCard);
  if (more) $("ev-list").append(...cards); else $("ev-list").replaceChildren(...cards);
  evNext = r.body.next_before;
  $("ev-older").disabled = evNext === null;
  const c = r.body.counts;
  $("ev-counts").textContent = t(r.body.source === "memory" ? "box.ev.counts_memory" : "box.ev.counts",
    {queued: c.queued, sent: c.sent, acked: c.acked});
}

function delivery(e) {
  if (e.state === "acked") return [t("box.delivery.acked_at"), " ", timeEl(e.acked_at)];
  if (e.state === "sent") return [t("box.delivery.sent_at", {n: e.attempts}), " ", timeEl(e.sent_at)];
  return [t("box.delivery.queued_at"), " ", timeEl(e.queued_at)];
}

function eventCard(e) {
  const code = String(e.cid).slice(1);
  return el("li", {class: "card event", "data-id": e.id, "data-kind": e.kind, "data-state": e.state},
    el("h3", {text: title(e.kind, code)}),
    el("p", {class: "zone", text: e.zone ? zoneName(e.zone) : t("box.zone.box")}),
    el("p", {class: "when"}, timeEl(e.occurred_at)),
    el("p", {class: "delivery pill", "data-state": e.state}, ...delivery(e)),
    e.media.length ? el("ul", {class: "media"}, ...e.media.map(mediaItem)) : null,
    el("details", {class: "codes"}, el("summary", {text: t("box.ev.codes")}),
      el("p", {text: t("box.ev.codes_line", {cid: e.cid, sia: e.sia, seq: e.seq})}),
      el("p", {}, t("box.ev.box_text") + " ", e.text || "—"),
      el("p", {class: "muted"}, t("box.ev.id") + " ", token(e.id))));
}

// What happened, in words: the kind and the condition (alarm — fire), or one of them
// when the other would only repeat it (armed; periodic test).
function title(kind, code) {
  if (kind === "arm" || kind === "disarm") return t("box.kind." + kind);
  if (kind === "test") return t("box.cid." + code);
  return `${t("box.kind." + kind)} — ${t("box.cid." + code)}`;
}

function mediaItem(m) {
  const li = el("li", {class: "media-" + m.kind, "data-media": m.id, "data-state": m.state});
  const src = "/api/media/" + encodeURIComponent(m.id);
  if (m.state === "here" && m.kind === "still") {
    li.append(el("a", {href: src, target: "_blank"},
      el("img", {src, loading: "lazy", alt: t("box.media.still_alt", {camera: m.camera})})));
  } else if (m.state === "here") {
    li.append(el("video", {src, controls: "", preload: "metadata", playsinline: ""}));
  } else if (m.state === "lost") {
    li.append(t("box.media.lost_" + m.kind, {why: m.lost}));
  } else {
    li.append(t("box.media." + m.state + "_" + m.kind));
  }
  return li;
}

async function testEvent() {
  const r = await api("POST", "/api/events/test");
  $("ev-sent").textContent = r.ok ? t("box.ev.test_sent") : r.body.error;
  $("ev-sent").dataset.id = r.ok ? r.body.id : "";
  await events();
}

function zoneChoices() {
  const sel = $("ev-zone");
  const chosen = sel.value;
  const zones = Object.values(BOX.zones);
  if (sel.options.length === zones.length + 1) return;
  sel.replaceChildren(sel.options[0], ...zones.map(z => el("option", {value: z.id, text: zoneName(z.id)})));
  sel.value = chosen;
}

PAGES.events = {
  init() {
    const kind = $("ev-kind");
    kind.append(...KINDS.map(k => el("option", {value: k, text: t("box.kind." + k)})));
    $("ev-filters").addEventListener("change", () => { evPaged = false; events().catch(fail); });
    $("ev-older").addEventListener("click", () => { evPaged = true; events(true).catch(fail); });
    $("ev-test").addEventListener("click", () => testEvent().catch(fail));
  },
  async show() { evPaged = false; $("ev-live").textContent = t("box.page.live"); await events(); },
  hide() { clearTimeout(evTimer); },
  status(s) {
    zoneChoices();
    const changes = s.journal.changes;
    if (evChanges !== null && changes !== evChanges && !evPaged) {
      clearTimeout(evTimer);  // a burst of changes: one look a little after it
      evTimer = setTimeout(() => events().catch(fail), 300);
    }
    evChanges = changes;
  },
};
