"use strict";
// The camera page: each camera's latest frame with the time it was taken, what is drawn
// over it (legend in the page), its recording state; the incident holds on its footage.
const SVG = "http://www.w3.org/2000/svg";
const OLD_FRAME_MS = 5000;  // a frame older than this is said to be old
let camTimer = null;

async function cameras() {
  const {body} = await api("GET", "/api/cameras");
  const cams = body.cameras;
  $("cam-none").classList.toggle("hidden", cams.length > 0);
  $("cam-legend").classList.toggle("hidden", cams.length === 0);
  const views = $("cam-views");
  const ids = cams.map(c => c.id).join(" ");
  if (views.dataset.ids !== ids) {
    views.replaceChildren(...cams.map(cameraView));
    views.dataset.ids = ids;
    items("hold-camera", cams.map(c => el("option", {value: c.id, text: c.id})));
  }
  await Promise.all(cams.map(async (c) => {
    drawOverlays($("cam-svg-" + c.id), c.overlays || {});
    $("cam-state-" + c.id).textContent = cameraWords(c.status);
    $("cam-rec-" + c.id).textContent = t("box.cam.recording", {state: recordingWords(c.recording, c.recording.enabled)});
    await frame(c.id);
  }));
}

async function frame(id) {
  const r = await fetch(`/api/cameras/${encodeURIComponent(id)}/frame`, {cache: "no-store"});
  const at = $("cam-at-" + id);
  if (!r.ok) { at.textContent = t("box.cam.no_frame"); at.dataset.old = "1"; return; }
  const taken = r.headers.get("X-Frame-At");
  const img = $("cam-img-" + id);
  const old = img.src;
  img.src = URL.createObjectURL(await r.blob());
  if (old.startsWith("blob:")) URL.revokeObjectURL(old);
  const age = Date.now() - new Date(taken).getTime();
  at.dataset.old = age > OLD_FRAME_MS ? "1" : "0";
  at.replaceChildren(t(age > OLD_FRAME_MS ? "box.cam.taken_old" : "box.cam.taken",
    {age: dur(age / 1000)}), " ", timeEl(taken));
}

function cameraView(c) {
  const id = c.id;
  const svg = document.createElementNS(SVG, "svg");
  svg.id = "cam-svg-" + id;
  svg.setAttribute("aria-hidden", "true");
  return el("section", {class: "cam"},
    el("h2", {}, id, " ", el("small", {id: "cam-state-" + id})),
    el("div", {class: "camera"}, el("img", {id: "cam-img-" + id, alt: t("box.cam.alt", {camera: id})}), svg),
    el("p", {id: "cam-at-" + id, class: "muted"}),
    el("p", {id: "cam-rec-" + id}),
    el("a", {id: "cam-snap-" + id, class: "button", href: `/api/cameras/${encodeURIComponent(id)}/snapshot`,
      download: id + "-snapshot.jpg", text: t("box.cam.snapshot")}));
}

function drawOverlays(svg, o) {
  if (o.width && o.height) svg.setAttribute("viewBox", `0 0 ${o.width} ${o.height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const shapes = [];
  const poly = (pts, cls) => {
    const p = document.createElementNS(SVG, "polygon");
    p.setAttribute("points", pts.map(q => q.join(",")).join(" "));
    p.setAttribute("class", cls);
    return p;
  };
  for (const m of o.masks || []) shapes.push(poly(m, "mask"));
  for (const a of o.ignored || []) shapes.push(poly(a.points, "ignored"));
  for (const z of o.zones || []) {
    shapes.push(poly(z.points, "zone"));
    const label = document.createElementNS(SVG, "text");
    label.textContent = z.name;
    label.setAttribute("class", "zone-name");
    label.setAttribute("x", z.points[0][0] + 4);
    label.setAttribute("y", z.points[0][1] + 16);
    shapes.push(label);
  }
  for (const [x, y, w, h] of o.motion || []) {
    const r = document.createElementNS(SVG, "rect");
    for (const [k, v] of Object.entries({x, y, width: w, height: h, class: "motion"})) r.setAttribute(k, v);
    shapes.push(r);
  }
  svg.replaceChildren(...shapes);
}

// -- incident holds ---------------------------------------------------------------
async function holds() {
  const r = await api("GET", "/api/holds");
  $("holds").classList.toggle("hidden", !r.ok);
  if (!r.ok) return;
  const h = r.body;
  if (!$("hold-minutes").options.length) {
    items("hold-minutes", h.minutes.map(m => el("option", {value: m, text: dur(m * 60)})));
    items("hold-days", h.days.map(d => el("option", {value: d, text: t("box.sys.days", {n: d})})));
  }
  $("hold-none").classList.toggle("hidden", h.holds.length > 0);
  items("hold-list", h.holds.map(x => el("li", {class: "card", "data-id": x.id},
    el("h3", {}, t("box.hold.footage", {camera: x.camera}), " ", timeEl(x.from_at), " → ", timeEl(x.to_at, false)),
    el("p", {}, t("box.hold.until") + " ", x.until_at ? timeEl(x.until_at) : t("box.hold.released_only")),
    el("p", {class: "muted"}, t("box.hold.by", {who: x.who}), " — ", x.why))));
}
async function placeHold(ev) {
  ev.preventDefault();
  const body = {camera: $("hold-camera").value, minutes: Number($("hold-minutes").value),
    keep_days: Number($("hold-days").value), why: $("hold-why").value};
  const r = await api("POST", "/api/holds", body);
  $("hold-msg").textContent = r.ok ? t("box.hold.placed", {segments: r.body.hold.segments}) : r.body.error;
  $("hold-msg").className = r.ok ? "" : "err";
  if (r.ok) { $("hold-why").value = ""; await holds(); }
}

PAGES.camera = {
  init() { $("hold-form").addEventListener("submit", (ev) => placeHold(ev).catch(fail)); },
  async show() {
    this.hide();
    const tick = async () => {  // one refresh at a time, a second apart
      await cameras().catch(fail);
      if (camTimer !== null) camTimer = setTimeout(tick, 1000);
    };
    camTimer = setTimeout(tick, 1000);
    await Promise.all([cameras(), holds()]);
  },
  hide() { clearTimeout(camTimer); camTimer = null; },
};
