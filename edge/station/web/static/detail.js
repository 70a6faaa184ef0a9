// One incident: the site and its instructions, the call list, the video (stills large and
// enlargeable, the clip with the alarm's instant on its timeline), fresh video from the box,
// the outcome and the close, and the incident's lines of the main courante.
"use strict";

const Detail = (() => {
  const OUTCOMES = {
    real: "station.outcome.real", false_cause: "station.outcome.false_cause",
    doubtful: "station.outcome.doubtful", technical: "station.outcome.technical",
    test: "station.outcome.test", customer_error: "station.outcome.customer_error",
  };
  const CALLS = {
    reached: "station.call.reached", no_answer: "station.call.no_answer",
    voicemail: "station.call.voicemail", wrong_number: "station.call.wrong_number",
  };
  const CONTACT = {
    keyholder: "station.contact.keyholder", guard: "station.contact.guard",
    police: "station.contact.police", fire_brigade: "station.contact.fire_brigade",
    technician: "station.contact.technician", customer: "station.contact.customer",
    other: "station.contact.other",
  };
  const STEPS = [  // [action, whom, label]
    ["inform", "police", "station.step.inform_police"],
    ["inform", "fire_brigade", "station.step.inform_fire_brigade"],
    ["dispatch", "guard", "station.step.dispatch_guard"],
    ["on_site", "guard", "station.step.on_site_guard"],
    ["dispatch", "keyholder", "station.step.dispatch_keyholder"],
    ["on_site", "keyholder", "station.step.on_site_keyholder"],
    ["on_site", "police", "station.step.on_site_police"],
    ["on_site", "fire_brigade", "station.step.on_site_fire_brigade"],
    ["dispatch", "technician", "station.step.dispatch_technician"],
  ];
  const REQUEST = {
    sent: "station.request.status.sent", accepted: "station.request.status.accepted",
    done: "station.request.status.done", failed: "station.request.status.failed",
    rejected: "station.request.status.rejected", unanswered: "station.request.status.unanswered",
  };
  const REQUEST_TYPE = {snapshot: "station.request.type.snapshot", clip: "station.request.type.clip"};
  const ARMED = {true: "station.armed.yes", false: "station.armed.no", null: "station.armed.unknown"};

  let data = null, id = null, loading = null, again = false, drawn = {}, shown = 0;
  let stills = [], stillAt = 0, operators = null;

  const root = () => document.getElementById("detail");
  const url = (m) => `/media/${encodeURIComponent(m.device)}/${encodeURIComponent(m.media_id)}?incident=${encodeURIComponent(id)}`;
  const mine = () => data && data.incident.holder === WS.me;
  const mayAct = () => mine() || WS.role === "supervisor";
  const section = (sid, titleKey, ...body) => el("section", {id: sid, class: "block"}, el("h3", {text: t(titleKey)}), ...body);

  async function open(incidentId) {
    id = incidentId;
    data = null;
    drawn = {};
    root().replaceChildren(el("p", {class: "hint", text: t("common.loading")}));
    await load();
  }

  async function load() {
    if (loading) { again = true; return loading; }
    loading = (async () => {
      const r = await api("/api/incidents/" + encodeURIComponent(id));
      if (!r.ok) { root().replaceChildren(el("p", {class: "hint", text: t("station.error.no_incident")})); return; }
      const fresh = await r.json();
      if (fresh.incident.id !== id) return;
      const first = data === null;
      data = fresh;
      render(first);
    })();
    try { await loading; } finally { loading = null; }
    if (again) { again = false; await load(); }
  }

  function refresh() { if (id) load(); }

  // -- the whole pane; inputs the operator is typing in are kept -----------------------------

  function render(first) {
    if (first) {
      root().replaceChildren(
        el("div", {id: "d-head"}),
        el("div", {class: "cols"},
          el("div", {class: "col"}, el("div", {id: "d-site"}), el("div", {id: "d-steps"}),
            el("div", {id: "d-calls"}), actions(), closing()),
          el("div", {class: "col"}, el("div", {id: "d-video"}), el("div", {id: "d-requests"}),
            el("div", {id: "d-alarms"}), el("div", {id: "d-boxes"}), logBlock(),
            el("div", {id: "d-history"}))));
    }
    // a part is drawn again only when what it shows changed: a click in progress on a
    // button is never lost to a redraw caused by something else (a still arriving)
    const inc = data.incident;
    part("head", [inc.holder, inc.escalated, inc.outcome, inc.priority, inc.category, inc.site, operators], head);
    part("site", data.site, site);
    part("steps", data.instructions, steps);
    part("calls", [data.site.contacts, data.courante.filter((e) => e.action === "call")], calls);
    closingState();
    part("video", data.alarms.map((a) => [a.id, a.media.map((m) => m.state)]), video);
    part("requests", [data.requests, data.cameras, data.commands], requests);
    part("alarms", data.alarms.map((a) => [a.id, a.restored_ms]), alarms);
    part("boxes", data.boxes, boxes);
    part("log", data.courante, log);
    part("history", data.history, history);
    root().dataset.incident = id;
    root().dataset.shown = String(++shown);
  }

  function part(name, what, draw) {
    const key = JSON.stringify(what);
    if (drawn[name] === key) return;
    drawn[name] = key;
    draw();
  }

  function tick() {
    const age = document.getElementById("d-age");
    if (age && data) age.textContent = I18N.duration((serverNow() - data.incident.opened_ms) / 1000);
  }

  // -- head: who holds it -------------------------------------------------------------

  function head() {
    const inc = data.incident;
    const held = inc.holder ? t("station.queue.held_by", {holder: inc.holder}) : t("station.queue.free");
    const buttons = [];
    if (!inc.holder) buttons.push(el("button", {type: "button", id: "take", class: "primary", text: t("station.detail.take"), onclick: take}));
    if (inc.holder && mayAct()) {
      buttons.push(el("button", {type: "button", id: "release", text: t("station.detail.release"), onclick: () => step("release")}));
    }
    if (mayAct()) {
      const select = el("select", {id: "transfer-to", "aria-label": t("station.detail.transfer_to")},
        el("option", {value: "", text: t("station.detail.transfer_to")}),
        ...(operators || []).filter((o) => o.name !== inc.holder).map((o) => el("option", {value: o.name, text: o.name})));
      buttons.push(select, el("button", {type: "button", id: "transfer", text: t("station.detail.transfer"), onclick: transfer}));
      if (!operators) loadOperators();
    }
    document.getElementById("d-head").replaceChildren(
      el("button", {type: "button", id: "back", class: "back", text: t("station.detail.back"),
                    onclick: () => document.body.classList.remove("reading")}),
      el("h2", {id: "d-title", class: "p" + inc.priority},
        el("span", {class: "category", text: t(CATEGORY[inc.category])}), " ",
        el("span", {class: "site", text: inc.site})),
      el("p", {class: "status"},
        el("span", {id: "d-holder", class: inc.holder ? "chip held" : "chip free", text: held}), " ",
        el("span", {text: t("station.detail.open_for")}), " ", el("span", {id: "d-age", text: ""}), " ",
        inc.escalated ? el("span", {class: "badge escalation", text: t("station.queue.escalated")}) : null,
        inc.outcome ? el("span", {class: "chip", text: t(OUTCOMES[inc.outcome])}) : null),
      el("div", {class: "buttons"}, ...buttons));
    tick();
  }

  async function loadOperators() {
    operators = [];
    const r = await api("/api/colleagues");
    if (r.ok) { operators = (await r.json()).operators; if (data) render(false); }
  }

  async function take() {
    const done = await post(`/api/incidents/${encodeURIComponent(id)}/take`, {});
    if (done) await load();
  }

  async function step(what, body) {
    const done = await post(`/api/incidents/${encodeURIComponent(id)}/${what}`, body || {});
    if (done) await load();
    return done;
  }

  async function transfer() {
    const to = document.getElementById("transfer-to").value;
    if (to) await step("transfer", {to});
  }

  // -- the site, its instructions, its call list ------------------------------------------

  function site() {
    const s = data.site;
    const coords = s.latitude !== null && s.latitude !== undefined;
    const map = coords ? `https://www.openstreetmap.org/?mlat=${s.latitude}&mlon=${s.longitude}#map=18/${s.latitude}/${s.longitude}` : null;
    document.getElementById("d-site").replaceChildren(section("site", "station.site.title",
      el("p", {id: "site-name", class: "strong", text: s.name}),
      s.address ? el("p", {id: "site-address", text: s.address}) : el("p", {class: "hint", text: t("station.site.no_address")}),
      coords ? el("p", {}, el("a", {id: "map-link", href: map, target: "_blank", rel: "noopener noreferrer",
                                    text: t("station.site.map", {lat: s.latitude.toFixed(5), lon: s.longitude.toFixed(5)})})) : null,
      s.linked ? null : el("p", {class: "hint", text: t("station.site.from_box")}),
      s.notes ? el("p", {class: "notes", text: s.notes}) : null));
  }

  function steps() {
    const groups = data.instructions;
    const items = [];
    for (const group of groups) {
      if (groups.length > 1) items.push(el("li", {class: "group", text: t(CATEGORY[group.category])}));
      for (const s of group.steps) {
        const box = el("input", {type: "checkbox", id: `step-${group.category}-${s.index}`, checked: !!s.done, disabled: !!s.done,
          onchange: async (e) => {
            e.target.disabled = true;
            const ok = await step("steps", {action: "instruction", category: group.category, step: s.index, label: s.text});
            if (!ok) { e.target.checked = false; e.target.disabled = false; }
          }});
        items.push(el("li", {class: s.done ? "done" : ""},
          el("label", {}, box, " ", el("span", {text: s.text})),
          s.done ? el("small", {}, " ", t("station.steps.done_by", {name: s.done.operator}), " ", when(s.done.at_ms, false)) : null));
      }
    }
    document.getElementById("d-steps").replaceChildren(section("instructions", "station.steps.title",
      items.length ? el("ul", {id: "steps", class: "checklist"}, ...items) : el("p", {class: "hint", text: t("station.steps.none")})));
  }

  function calls() {
    const made = data.courante.filter((e) => e.action === "call");
    const items = data.site.contacts.map((c, n) => {
      const tries = made.filter((e) => e.detail.contact === c.name);
      return el("li", {class: "contact", dataset: {n}},
        el("div", {}, el("b", {text: c.name}), " ", el("span", {class: "role", text: t(CONTACT[c.role])})),
        el("div", {}, el("a", {class: "phone", href: "tel:" + c.phone.replace(/[^+0-9]/g, ""), text: c.phone}),
          c.note ? el("span", {class: "note", text: " " + c.note}) : null),
        el("div", {class: "buttons"}, ...Object.keys(CALLS).slice(0, 3).map((result) =>
          el("button", {type: "button", class: "call call-" + result, text: t(CALLS[result]),
                        onclick: () => step("steps", {action: "call", contact: c.name, phone: c.phone, result})}))),
        tries.length ? el("ul", {class: "tries"}, ...tries.map((e) => el("li", {}, when(e.at_ms, false), " ", t(CALLS[e.detail.result])))) : null);
    });
    document.getElementById("d-calls").replaceChildren(section("call-list", "station.calls.title",
      items.length ? el("ol", {id: "calls"}, ...items) : el("p", {class: "hint", text: t("station.calls.none")})));
  }

  function actions() {
    return el("div", {id: "d-actions"}, section("dispatch", "station.step.title",
      el("div", {class: "buttons grid"}, ...STEPS.map(([action, to, key]) =>
        el("button", {type: "button", id: `do-${action}-${to}`, text: t(key),
                      onclick: () => step("steps", {action, to})})))));
  }

  // -- outcome and close ---------------------------------------------------------------

  function closing() {
    return el("div", {id: "d-close"}, section("closing", "station.close.title",
      el("label", {for: "outcome", text: t("station.outcome.title")}),
      el("div", {class: "row"},
        el("select", {id: "outcome"}, el("option", {value: "", text: t("station.outcome.choose")}),
          ...Object.entries(OUTCOMES).map(([code, key]) => el("option", {value: code, text: t(key)}))),
        el("input", {id: "cause", type: "text", maxlength: "2000", placeholder: t("station.outcome.cause")}),
        el("button", {type: "button", id: "set-outcome", text: t("station.outcome.set"), onclick: async () => {
          const code = document.getElementById("outcome").value;
          if (code) await step("outcome", {code, cause: document.getElementById("cause").value});
        }})),
      el("p", {id: "restore-state"}),
      el("label", {for: "close-reason", text: t("station.close.reason")}),
      el("textarea", {id: "close-reason", rows: "2", maxlength: "2000"}),
      el("button", {type: "button", id: "close", class: "primary", text: t("station.close.do"), onclick: async () => {
        const done = await step("close", {reason: document.getElementById("close-reason").value});
        if (done) {
          banner(t("station.close.done"), "ok");
          document.body.classList.remove("reading");
        }
      }})));
  }

  function closingState() {
    const inc = data.incident;
    const node = document.getElementById("restore-state");
    node.textContent = inc.unrestored ? t("station.close.not_restored", {n: inc.unrestored}) : t("station.close.restored");
    node.className = inc.unrestored ? "warn" : "ok";
    const select = document.getElementById("outcome");
    if (inc.outcome && !select.value) select.value = inc.outcome;
    document.getElementById("d-close").hidden = inc.closed;
  }

  // -- video: stills, clip, evidence, lost media ---------------------------------------------

  function withVideo() {
    const top = data.alarms.find((a) => a.id === data.incident.top.alarm_id);
    const rest = data.alarms.filter((a) => a.videos.length && a !== top);
    return (top && top.videos.length ? [top] : []).concat(rest);
  }

  function video() {
    const list = withVideo();
    const node = document.getElementById("d-video");
    if (!list.length) { node.replaceChildren(section("video", "station.video.title", el("p", {class: "hint", text: t("station.video.none")}))); return; }
    const chooser = list.length > 1 ? el("select", {id: "video-of", onchange: (e) => showVideo(list[Number(e.target.value)])},
      ...list.map((a, n) => el("option", {value: String(n), text: `${a.zone_name || a.device} · ${I18N.time(new Date(a.occurred_ms), false)}`}))) : null;
    node.replaceChildren(section("video", "station.video.title", chooser, el("div", {id: "video-body"})));
    showVideo(list[0]);
  }

  function showVideo(alarm) {
    const plan = alarm.videos[0];
    const media = new Map(alarm.media.map((m) => [m.media_id, m]));
    stills = plan.stills.map((s) => ({...s, media: media.get(s.media_id)})).filter((s) => s.media);
    stillAt = Math.max(0, stills.findIndex((s) => s.offset_s === 0));
    const clip = plan.clip_id ? media.get(plan.clip_id) : null;
    const body = document.getElementById("video-body");
    body.replaceChildren(
      el("h4", {text: t("station.video.stills")}),
      stills.length ? stillViewer() : el("p", {class: "hint", text: t("station.video.no_stills")}),
      el("h4", {text: t("station.video.clip")}),
      clipView(clip, plan, alarm),
      evidence(alarm),
      lost(alarm));
    if (stills.length) showStill(stillAt);
  }

  function stillViewer() {
    const ready = stills.filter((s) => s.media.state === "ready");
    return el("div", {id: "still-viewer", tabindex: "0", onkeydown: stillKeys},
      el("div", {class: "still-main"},
        el("button", {type: "button", id: "still-prev", class: "step", "aria-label": t("station.video.previous"), text: "‹", onclick: () => showStill(stillAt - 1)}),
        el("figure", {id: "still-main"},
          el("img", {id: "still-img", alt: "", onclick: () => enlarge(stillAt)}),
          el("figcaption", {id: "still-caption"})),
        el("button", {type: "button", id: "still-next", class: "step", "aria-label": t("station.video.next"), text: "›", onclick: () => showStill(stillAt + 1)})),
      el("div", {class: "buttons"},
        el("button", {type: "button", id: "still-enlarge", text: t("station.video.enlarge"), onclick: () => enlarge(stillAt)}),
        el("span", {class: "hint", text: t("station.video.keys")}),
        el("span", {class: "hint", text: t("station.video.ready", {ready: ready.length, expected: stills.length})})),
      el("div", {id: "stills", class: "strip"}, ...stills.map((s, n) => el("button", {type: "button", class: "thumb", dataset: {n},
        onclick: () => showStill(n)}, s.media.state === "ready" ? el("img", {class: "still", src: url(s.media), alt: offsetText(s.offset_s)}) : el("span", {class: "pending", text: t("station.media.pending")}),
        el("span", {class: "offset", text: offsetText(s.offset_s)})))));
  }

  function offsetText(offset) {
    if (offset === null || offset === undefined) return "";
    if (offset === 0) return t("station.video.instant");
    return t("station.video.offset", {s: (offset > 0 ? "+" : "−") + Math.abs(offset).toLocaleString(I18N.lang)});
  }

  function showStill(n) {
    if (!stills.length) return;
    stillAt = (n + stills.length) % stills.length;
    const s = stills[stillAt];
    const img = document.getElementById("still-img");
    if (s.media.state === "ready") { img.src = url(s.media); img.hidden = false; } else img.hidden = true;
    document.getElementById("still-caption").textContent = `${stillAt + 1}/${stills.length} · ${offsetText(s.offset_s)}` +
      (s.media.state === "ready" ? "" : " · " + t(s.media.state === "lost" ? "station.media.lost" : "station.media.pending"));
    for (const b of document.querySelectorAll("#stills .thumb")) b.classList.toggle("on", Number(b.dataset.n) === stillAt);
    document.getElementById("still-viewer").dataset.at = String(stillAt);
    const viewer = document.getElementById("viewer");
    if (!viewer.hidden) enlarge(stillAt);
  }

  function stillKeys(e) {
    if (e.key === "ArrowRight") { showStill(stillAt + 1); e.preventDefault(); }
    else if (e.key === "ArrowLeft") { showStill(stillAt - 1); e.preventDefault(); }
    else if (e.key === "Enter") { enlarge(stillAt); e.preventDefault(); }
  }

  function enlarge(n) {
    const s = stills[n];
    if (!s || s.media.state !== "ready") return;
    const viewer = document.getElementById("viewer");
    document.getElementById("viewer-img").src = url(s.media);
    document.getElementById("viewer-caption").textContent = `${n + 1}/${stills.length} · ${offsetText(s.offset_s)}`;
    viewer.dataset.at = String(n);
    if (viewer.hidden) {
      viewer.hidden = false;
      document.getElementById("viewer-close").focus();
    }
  }

  function closeViewer() {
    document.getElementById("viewer").hidden = true;
    const still = document.getElementById("still-viewer");
    if (still) still.focus();
  }

  function viewerKeys(e) {
    if (document.getElementById("viewer").hidden) return;
    if (e.key === "Escape") closeViewer();
    else if (e.key === "ArrowRight") showStill(stillAt + 1);
    else if (e.key === "ArrowLeft") showStill(stillAt - 1);
    else return;
    e.preventDefault();
  }

  function clipView(clip, plan, alarm) {
    if (!clip) return el("p", {class: "hint", text: t("station.video.no_clip")});
    if (clip.state === "lost") return el("p", {class: "lost", text: t("station.media.lost_reason", {reason: clip.reason || ""})});
    if (clip.state !== "ready") return el("p", {class: "hint", id: "clip-pending", text: t("station.video.clip_pending")});
    const pre = plan.pre_s !== null ? plan.pre_s : plan.start_ms ? (alarm.occurred_ms - plan.start_ms) / 1000 : null;
    const player = el("video", {id: "clip", controls: true, muted: true, playsinline: true, preload: "metadata", src: url(clip)});
    const fill = el("div", {class: "fill"});
    const mark = el("div", {id: "alarm-mark", class: "mark", title: t("station.video.instant")});
    const bar = el("div", {id: "clip-bar", class: "timeline", role: "slider", "aria-label": t("station.video.timeline")}, fill, mark);
    const at = el("span", {id: "clip-time", class: "hint"});
    const place = () => {
      if (!isFinite(player.duration) || !player.duration) return;
      if (pre !== null) { mark.style.left = `${Math.min(100, Math.max(0, (pre / player.duration) * 100))}%`; mark.hidden = false; }
      fill.style.width = `${(player.currentTime / player.duration) * 100}%`;
      at.textContent = t("station.video.at", {s: (player.currentTime - (pre || 0)).toFixed(1)});
    };
    mark.hidden = true;
    player.addEventListener("loadedmetadata", place);
    player.addEventListener("timeupdate", place);
    bar.addEventListener("click", (e) => {
      const box = bar.getBoundingClientRect();
      if (isFinite(player.duration)) player.currentTime = ((e.clientX - box.left) / box.width) * player.duration;
    });
    return el("div", {class: "clip"}, player, bar,
      el("div", {class: "buttons"},
        pre !== null ? el("button", {type: "button", id: "jump-alarm", text: t("station.video.jump"), onclick: () => {
          player.currentTime = Math.max(0, pre - 0.0);
          player.play().catch(() => {});
        }}) : null,
        pre !== null ? el("span", {class: "hint", text: t("station.video.alarm_at", {s: pre.toFixed(1)})}) : null, at));
  }

  function personSeen(e) {
    // the box's person check (optional): a person in the motion boxes, with its confidence
    if (e.person === null || e.person === undefined) return null;
    const pct = e.person_confidence === null ? null : Math.round(e.person_confidence * 100);
    const text = e.person
      ? (pct === null ? t("station.evidence.person_yes") : t("station.evidence.person_yes_conf", {pct}))
      : t("station.evidence.person_no");
    return el("span", {class: e.person ? "person seen" : "person", text: " · " + text});
  }

  function evidence(alarm) {
    if (!alarm.evidence.length) return el("p", {class: "hint", text: t("station.evidence.none")});
    return el("div", {id: "evidence"}, el("h4", {text: t("station.evidence.title")}),
      el("ul", {}, ...alarm.evidence.map((e) => el("li", {class: e.seen ? "seen" : "calm", dataset: {camera: e.camera}},
        el("b", {text: e.camera}), " ",
        el("span", {class: "verdict", text: t(e.seen === true ? "station.evidence.seen" : e.seen === false ? "station.evidence.not_seen" : "station.evidence.unknown")}),
        e.frames !== null ? el("span", {text: " · " + t("station.evidence.frames", {n: e.frames})}) : null,
        e.areas.length ? el("span", {text: " · " + t("station.evidence.areas", {areas: e.areas.join(", ")})}) : null,
        e.boxes.length ? el("span", {class: "id", text: " · " + t("station.evidence.boxes", {boxes: e.boxes.map((b) => b.join(",")).join(" ; ")})}) : null,
        e.last_at ? el("span", {}, " · ", t("station.evidence.last"), " ", el("span", {html: I18N.timeHtml(e.last_at, false)})) : null,
        personSeen(e)))));
  }

  function lost(alarm) {
    const gone = alarm.media.filter((m) => m.state === "lost");
    if (!gone.length) return null;
    return el("div", {id: "lost-media"}, ...gone.map((m) => el("p", {class: "lost",
      text: t(m.kind === "clip" ? "station.media.clip_lost" : "station.media.still_lost", {reason: m.reason || ""})})));
  }

  // -- fresh video from the box ---------------------------------------------------------

  function requests() {
    const node = document.getElementById("d-requests");
    const cams = data.cameras;
    const devices = data.boxes.map((b) => b.device);
    const form = !data.commands ? el("p", {class: "hint", text: t("station.request.unavailable")})
      : !cams.length ? el("p", {class: "hint", text: t("station.request.no_camera")})
        : el("div", {class: "row"},
          devices.length > 1 ? el("select", {id: "req-device"}, ...devices.map((d) => el("option", {value: d, text: d}))) : null,
          el("select", {id: "req-camera", "aria-label": t("station.request.camera")}, ...cams.map((c) => el("option", {value: c, text: c}))),
          el("button", {type: "button", id: "ask-snapshot", text: t("station.request.snapshot"), onclick: () => ask("snapshot")}),
          el("select", {id: "clip-seconds", "aria-label": t("station.request.seconds")},
            ...data.clip_seconds.map((s) => el("option", {value: String(s), text: t("station.request.last_s", {s})}))),
          el("button", {type: "button", id: "ask-clip", text: t("station.request.clip"), onclick: () => ask("clip")}));
    const keep = node.querySelector("#req-camera");
    const chosen = keep ? [keep.value, (node.querySelector("#clip-seconds") || {}).value] : null;
    node.replaceChildren(section("fresh", "station.request.title", form,
      el("ul", {id: "requests"}, ...data.requests.slice().reverse().map(requestItem))));
    if (chosen && document.getElementById("req-camera")) {
      document.getElementById("req-camera").value = chosen[0];
      if (chosen[1]) document.getElementById("clip-seconds").value = chosen[1];
    }
  }

  function requestItem(r) {
    const media = r.media.map((m) => m.state === "ready"
      ? (m.kind === "clip" ? el("video", {class: "answer", controls: true, muted: true, preload: "metadata", src: url(m)})
        : el("img", {class: "answer still", src: url(m), alt: t("station.request.type.snapshot")}))
      : el("span", {class: m.state === "lost" ? "lost" : "hint", text: t(m.state === "lost" ? "station.media.lost" : "station.media.pending")}));
    return el("li", {class: "request " + r.status, dataset: {id: r.id, status: r.status}},
      el("div", {}, el("b", {text: t(REQUEST_TYPE[r.type])}), " · ", r.camera,
        r.seconds ? " · " + t("station.request.last_s", {s: r.seconds}) : "", " · ", when(r.asked_ms, false),
        " · ", el("span", {class: "status", text: t(REQUEST[r.status] || "station.request.status.sent")}),
        r.reason ? el("span", {class: "reason", text: " · " + r.reason}) : null),
      el("div", {class: "answers"}, ...media));
  }

  async function ask(type) {
    const camera = document.getElementById("req-camera").value;
    const device = (document.getElementById("req-device") || {}).value || data.boxes[0].device;
    const seconds = Number((document.getElementById("clip-seconds") || {}).value || 0);
    await step("requests", type === "clip" ? {type, camera, device, seconds} : {type, camera, device});
  }

  // -- the alarms, the boxes, the courante, the history -----------------------------------

  function alarms() {
    document.getElementById("d-alarms").replaceChildren(section("alarms", "station.alarms.title",
      el("ul", {id: "alarm-list"}, ...data.alarms.map((a) => el("li", {class: "alarm p" + a.priority, dataset: {id: a.id}},
        el("div", {},
          el("b", {text: t(CATEGORY[a.category])}), " · ", t(KIND[a.kind] || "station.kind.alarm"), " · ",
          el("span", {class: "zone", text: a.zone ? t("station.alarm.zone", {name: a.zone.name, number: a.zone.number}) : (a.zone_name || a.device)}),
          a.historical ? el("span", {class: "badge late", text: t("station.alarm.late")}) : null,
          a.restored_ms ? el("span", {class: "badge ok"}, t("station.alarm.restored"), " ", when(a.restored_ms, false))
            : el("span", {class: "badge warn", text: t("station.alarm.active")})),
        el("div", {class: "small"},
          a.cid ? el("span", {class: "codes", text: t("station.alarm.codes", {cid: a.cid, sia: a.sia})}) : null,
          a.cid ? " · " : null,
          a.source === "event" ? el("span", {text: t("station.alarm.armed", {state: t(ARMED[String(a.armed ?? null)]), partition: a.partition})}) : null,
          a.reason ? el("span", {class: "reason", text: a.reason}) : null),
        el("div", {class: "small"}, t("station.alarm.occurred"), " ", when(a.occurred_ms), " · ",
          t("station.alarm.received"), " ", when(a.received_ms, false)))))));
  }

  function boxes() {
    document.getElementById("d-boxes").replaceChildren(section("box-health", "station.box.title",
      el("ul", {id: "boxes"}, ...data.boxes.map((b) => el("li", {class: b.supervision === "lost" ? "lost" : "", dataset: {device: b.device}},
        el("b", {class: "id", text: b.device}), " · ",
        el("span", {class: "state", text: t(b.state === "online" ? "station.box.online" : b.state === "offline" ? "station.box.offline" : "station.box.unknown")}),
        " · ", el("span", {class: "supervision", text: t(b.supervision === "lost" ? "station.box.lost" : b.supervision === "ok" ? "station.box.supervised" : "station.box.unknown")}),
        b.heartbeat_age_s !== null && b.heartbeat_age_s !== undefined ? " · " + t("station.box.heartbeat", {age: I18N.duration(b.heartbeat_age_s)}) : "",
        b.outbox_depth !== null && b.outbox_depth !== undefined ? " · " + t("station.box.outbox", {n: b.outbox_depth}) : "",
        " · ", t("station.box.armed_now", {state: t(ARMED[String(b.armed ?? null)])}),
        b.located && b.located.address ? el("div", {class: "small", text: b.located.address}) : null)))));
  }

  function logBlock() {
    return el("div", {id: "d-log"}, el("section", {class: "block", id: "courante"},
      el("h3", {text: t("station.log.title")}),
      el("ol", {id: "log"}),
      el("label", {for: "comment", text: t("station.log.comment")}),
      el("textarea", {id: "comment", rows: "2", maxlength: "2000"}),
      el("button", {type: "button", id: "add-comment", text: t("station.log.add"), onclick: async () => {
        const box = document.getElementById("comment");
        if (!box.value.trim()) return;
        if (await step("steps", {action: "comment", text: box.value})) box.value = "";
      }})));
  }

  function log() {
    document.getElementById("log").replaceChildren(...data.courante.map((e) => el("li", {dataset: {id: e.id, action: e.action}},
      when(e.at_ms, false), " ", el("b", {text: e.operator || t("station.courante.system")}), " ",
      el("span", {class: "words", text: e.words}),
      e.text ? el("q", {text: e.text}) : null,
      e.corrects ? el("span", {class: "hint", text: " " + t("station.log.corrects", {n: e.corrects})}) : null,
      el("button", {type: "button", class: "correct link", text: t("station.log.correct"), onclick: () => correct(e)}))));
  }

  function correct(entry) {
    const li = document.querySelector(`#log li[data-id="${entry.id}"]`);
    if (!li || li.querySelector("textarea")) return;
    const box = el("textarea", {class: "correction", rows: "2", maxlength: "2000"});
    li.append(box, el("button", {type: "button", class: "send-correction", text: t("station.log.send_correction"), onclick: async () => {
      if (box.value.trim()) await step("steps", {action: "correction", corrects: entry.id, text: box.value});
    }}));
    box.focus();
  }

  function history() {
    document.getElementById("d-history").replaceChildren(section("site-history", "station.history.title",
      el("ul", {id: "history"}, ...data.history.map((h) => el("li", {dataset: {kind: h.kind}},
        when(h.received_ms, false), " ", el("b", {text: t(KIND[h.kind] || "station.kind.alarm")}), " ",
        h.zone || "", h.historical ? el("span", {class: "badge late", text: t("station.alarm.late")}) : null)))));
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("viewer-close").onclick = closeViewer;
    document.getElementById("viewer-prev").onclick = () => showStill(stillAt - 1);
    document.getElementById("viewer-next").onclick = () => showStill(stillAt + 1);
    document.addEventListener("keydown", viewerKeys);
  });

  return {open, refresh, tick, get data() { return data; }};
})();
