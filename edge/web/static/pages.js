"use strict";
// The overview (from the pushed status), the inputs live and the walk test.

// -- overview -------------------------------------------------------------------
function armedWords(armed) {
  const parts = Object.entries(armed || {});
  if (!parts.length) return t("box.armed.none");
  return parts.map(([p, a]) => t(a ? "box.armed.on" : "box.armed.off", {partition: p})).join(", ");
}

function renderOverview(s) {
  const d = s.device, u = s.uplink, o = s.outbox, y = s.system || {};
  dl("ov-box", [
    ["box.ov.device", token(d.id), "device"],
    ["box.ov.site", d.site, "site"],
    ["box.ov.account", d.account, "account"],
    ["box.ov.version", d.version, "version"],
    ["box.ov.uptime", dur(d.uptime_s), "uptime"],
    ["box.ov.provisioning", t("box.provisioning." + s.provisioning.state), "provisioning"],
    d.simulated_inputs ? ["box.ov.simulated", t("box.ov.simulated_yes"), "simulated"] : null,
  ]);
  const link = u.connected
    ? t("box.link.up_since", {time: I18N.time(u.connected_since)})
    : t("box.link.down");
  dl("ov-link", [
    ["box.ov.link_state", link, "connected"],
    u.connected ? null : ["box.ov.last_error", u.last_error ? token(u.last_error) : null, "last_error"],
    u.connected || u.path_lost ? null : ["box.ov.margin", t("box.link.margin", {left: dur(u.margin_s)}), "margin"],
    u.path_lost ? ["box.ov.margin", t("box.link.lost"), "margin"] : null,
    ["box.ov.broker", token(u.broker), "broker"],
    ["box.ov.last_ack", u.last_ack_at ? timeEl(u.last_ack_at) : t("box.link.no_ack"), "last_ack"],
    ["box.ov.supervision", t("box.link.supervision", {heartbeat: dur(u.heartbeat_s),
      loss: dur(u.path_loss_s)}), "supervision"],
    ["box.ov.sent", t("box.link.counts", {published: u.published, acked: u.acknowledged}), "sent"],
    ...routeRows(u),
  ]);
  const waiting = o.depth ? t("box.outbox.waiting", {n: o.depth, age: dur(o.oldest_age_s)})
    : t("box.outbox.empty");
  dl("ov-outbox", [
    ["box.ov.events_waiting", waiting, "depth"],
    ["box.ov.media_waiting", o.media ? t("box.outbox.media", {n: o.media, size: bytes(o.media_bytes)})
      : t("box.outbox.no_media"), "media"],
    o.held_in_memory ? ["box.ov.held", t("box.outbox.held", {n: o.held_in_memory}), "held"] : null,
    o.reserve_held ? null : ["box.ov.reserve", t("box.outbox.reserve_used"), "reserve"],
  ]);
  // after an outage, the link back: how much of the backlog has gone (none: no bar)
  const backlog = u.connected && o.depth > 0 && o.peak_depth > 1;
  $("ov-drain-box").classList.toggle("hidden", !backlog);
  if (backlog) {
    $("ov-drain").value = (o.peak_depth - o.depth) / o.peak_depth;
    $("ov-drain-label").textContent = t("box.outbox.drain", {sent: o.peak_depth - o.depth, of: o.peak_depth});
  }
  const active = s.zones.zones.filter(z => z.active);
  dl("ov-inputs", [
    ["box.ov.armed", armedWords(s.zones.armed), "armed"],
    ["box.ov.active", active.length ? active.map(z => zoneName(z.id)).join(", ") : t("box.zone.all_quiet"), "active"],
  ]);
  const cams = Object.entries(s.cameras);
  dl("ov-cameras", cams.length ? [
    ...cams.map(([id, c]) => ["box.ov.camera_named", cameraWords(c), "camera-" + id, {camera: id}]),
    ["box.ov.recording", recordingWords(s.video.recorder, true), "recording"],
  ] : [["box.ov.camera", t("box.cam.none"), "camera"]]);
  const sync = y.clock_synchronized === null || y.clock_synchronized === undefined ? t("common.unknown")
    : t(y.clock_synchronized ? "box.sys.synced" : "box.sys.not_synced", {offset: number(y.clock_offset_ms, 1) ?? "—"});
  dl("ov-system", [
    ["box.ov.clock", sync, "clock"],
    ["box.ov.load", number(y.load_1m, 2), "load"],
    ["box.ov.temperature", y.cpu_temp_c === null ? t("box.sys.no_sensor")
      : t("box.sys.celsius", {c: number(y.cpu_temp_c, 1)}), "temperature"],
    ["box.ov.memory", y.memory_total_bytes ? t("box.sys.of", {used: bytes(y.memory_used_bytes), total: bytes(y.memory_total_bytes)}) : null, "memory"],
    ["box.ov.disk", y.disk_total_bytes ? t("box.sys.free", {free: bytes(y.disk_free_bytes), total: bytes(y.disk_total_bytes)}) : null, "disk"],
    ["box.ov.retention", t("box.sys.days", {n: y.retention_days}), "retention"],
    ["box.ov.oldest", y.oldest_recording_at ? timeEl(y.oldest_recording_at) : t("box.sys.no_recording"), "oldest"],
    ["box.ov.journal", s.journal.durable ? t("box.sys.journal_file", {days: s.journal.days})
      : t("box.sys.journal_memory", {problem: s.journal.problem || "—"}), "journal"],
  ]);
}
// Backup routes ([[routes]]): the category their supervision reaches, then each path.
function routeRows(u) {
  if (!u.routes || u.routes.length < 2) return [];
  return [
    ["box.ov.category", u.ats ? t("box.route.category", {category: u.ats}) : t("box.route.no_category"), "category"],
    ...u.routes.map(r => ["box.ov.route_named", routeWords(r), "route-" + r.number,
      {number: r.number, name: r.number === 1 ? t("box.route.primary") : r.name}]),
  ];
}
function routeWords(r) {
  const kind = t("box.route.kind_" + r.kind);
  if (r.lost) return t("box.route.lost", {kind, loss: dur(r.path_loss_s)});
  if (!r.connected) return t("box.route.down", {kind});
  return t("box.route.up", {kind, published: r.published, acked: r.acknowledged});
}
function cameraWords(c) {
  if (c.state === "running") return t("box.cam.running", {fps: number(c.fps, 1), width: c.width, height: c.height});
  if (c.state === "lost") return t("box.cam.lost", {error: c.error || "—"});
  return t("box.cam.starting");
}
function recordingWords(r, enabled) {
  if (!enabled) return t("box.rec.off");
  if (r.failing) return t("box.rec.failing", {error: r.failing});
  if (r.yielding) return t("box.rec.yielding");
  return t("box.rec.mode_" + r.mode);
}
PAGES.overview = {status: renderOverview};

// -- inputs (Server-Sent Events) -----------------------------------------------
let inputsStream = null;
function openInputs() {
  if (inputsStream) return;
  inputsStream = new EventSource("/api/inputs/stream");
  inputsStream.onopen = () => { $("in-live").textContent = t("box.page.live"); };
  inputsStream.onerror = () => { $("in-live").textContent = t("box.page.reconnecting"); };
  inputsStream.onmessage = (m) => { const d = JSON.parse(m.data); renderInputs(d); renderWalk(d.walktest); };
}
function closeInputs() { inputsStream?.close(); inputsStream = null; }

function zoneState(z) {
  if (z.type === "armed_state") return t(z.active ? "box.zone.armed" : "box.zone.disarmed");
  return t(z.active ? "box.zone.active" : "box.zone.quiet");
}
function renderInputs(d) {
  $("in-armed").textContent = armedWords(d.armed);
  items("in-zones", d.zones.map(z => el("li", {id: "zone-" + z.id, class: z.active ? "card active" : "card",
      "data-active": z.active ? "1" : "0"},
    el("div", {class: "head"}, el("h3", {text: t("box.zone.label", {number: z.number, name: z.name})}),
      el("span", {class: "pill", text: zoneState(z)})),
    el("p", {class: "muted", text: t("box.zone_type." + z.type)}),
    el("p", {class: "muted"}, t("box.zone.last_change") + " ",
      z.last_change_at ? timeEl(z.last_change_at) : t("box.zone.never"), " · ",
      t("box.zone.changes", {n: z.changes})))));
}
PAGES.inputs = {show: openInputs, hide: closeInputs};

// -- walk test ------------------------------------------------------------------
let walkRunning = null;
function zoneItem(id, seen) {
  return el("li", {class: seen ? "seen" : "missing", "data-zone": id}, zoneName(id));
}
function renderWalk(w) {
  const running = !!(w && w.running);
  $("wt-start").disabled = running;
  $("wt-stop").disabled = !running;
  $("wt-state").dataset.running = running ? "1" : "0";
  $("wt-state").textContent = running
    ? t("box.wt.running", {left: dur(w.remaining_s), n: w.activations})
    : t("box.wt.idle");
  if (running) {
    items("wt-seen", w.seen.map(z => zoneItem(z, true)));
    items("wt-missing", w.not_seen.map(z => zoneItem(z, false)));
  } else if (walkRunning) {
    lastWalk($("wt-result").dataset.event || null);  // it ended (time up): its result
  }
  walkRunning = running;
}
// The last walk test's result; with ``before`` (the event id shown, or null), wait for a
// newer one: a test's result follows its end by the commit of the report it sends.
async function lastWalk(before) {
  for (let i = 0; i < 30; i++) {
    const r = await api("GET", "/api/walktest");
    if (!r.ok) { $("wt-msg").textContent = r.body.error; return; }
    const last = r.body.last;
    if (before === undefined || (last && last.event_id !== before)) { renderResult(last); return; }
    await new Promise(ok => setTimeout(ok, 100));
  }
}
function renderResult(last) {
  $("wt-result").classList.toggle("hidden", !last);
  if (!last) return;
  items("wt-seen", last.seen.map(z => zoneItem(z, true)));
  items("wt-missing", last.not_seen.map(z => zoneItem(z, false)));
  $("wt-summary").replaceChildren(t("box.wt.ended_" + (last.ended_by === "timeout" ? "timeout" : "stopped"),
    {duration: dur(last.duration_s), seen: last.seen.length, total: last.seen.length + last.not_seen.length}),
    " ", timeEl(last.ended_at));
  items("wt-list", [
    ...last.seen.map(z => el("li", {class: "seen", text: t("box.wt.item_seen", {zone: zoneName(z)})})),
    ...last.not_seen.map(z => el("li", {class: "missing", text: t("box.wt.item_missing", {zone: zoneName(z)})})),
  ]);
  $("wt-sent").textContent = t("box.wt.sent");
  $("wt-result").dataset.event = last.event_id;
}
async function walkStart() {
  $("wt-msg").textContent = "";
  const r = await api("POST", "/api/walktest", {minutes: Number($("wt-minutes").value)});
  if (!r.ok) { $("wt-msg").textContent = r.body.error; return; }
  $("wt-result").classList.add("hidden");
  renderWalk({running: true, ...r.body.running});
}
async function walkStop() {
  const before = $("wt-result").dataset.event || null;
  walkRunning = false;  // the stream's "idle" that follows is this stop, not a timeout
  const r = await api("DELETE", "/api/walktest");
  if (!r.ok) { $("wt-msg").textContent = r.body.error; return; }
  await lastWalk(before);
}
PAGES.walktest = {
  init() {
    items("wt-minutes", [5, 10, 15, 30, 60].map(m =>
      el("option", {value: m, selected: m === 15 ? "selected" : null, text: dur(m * 60)})));
    $("wt-start").addEventListener("click", () => walkStart().catch(fail));
    $("wt-stop").addEventListener("click", () => walkStop().catch(fail));
  },
  async show() { openInputs(); await lastWalk(); },
  hide: closeInputs,
};
