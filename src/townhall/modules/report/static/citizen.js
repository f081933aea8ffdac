// Citizen PWA: the report wizard (draft kept offline), my reports live, the public map and list.
import { CONFIG, api, el, liveFeed, makeMap, registerWorker, statusBadge, when } from "./common.js";

registerWorker();
const $ = (id) => document.getElementById(id);
const DRAFT = "townhall.report.draft";
const FIELDS = ["title", "description", "category", "lat", "lng", "address"];
let categories = [];

function saveDraft() {
  const draft = Object.fromEntries(FIELDS.map((f) => [f, $(f).value]));
  draft.anonymous = $("anonymous").checked;
  localStorage.setItem(DRAFT, JSON.stringify(draft));
}

function loadDraft() {
  try {
    const draft = JSON.parse(localStorage.getItem(DRAFT) || "{}");
    for (const f of FIELDS) if (draft[f] !== undefined) $(f).value = draft[f];
    $("anonymous").checked = !!draft.anonymous;
  } catch { localStorage.removeItem(DRAFT); }
}

function suggest() {
  const text = `${$("title").value} ${$("description").value}`.toLowerCase();
  const scored = categories
    .map((c) => ({ c, score: c.keywords.filter((k) => text.includes(k.toLowerCase())).length }))
    .filter((x) => x.score > 0)
    .sort((a, b) => b.score - a.score)
    .slice(0, 3);
  const box = $("suggest");
  box.replaceChildren();
  if (!scored.length) return;
  box.append("Suggested: ");
  for (const { c } of scored) {
    box.append(el("button", { type: "button", class: "link", onclick: () => { $("category").value = c.code; saveDraft(); } }, c.name), " ");
  }
}

function setLocation(lat, lng) {
  $("lat").value = lat.toFixed(6);
  $("lng").value = lng.toFixed(6);
  saveDraft();
}

async function checkDupes() {
  const list = $("dupes");
  list.replaceChildren(el("li", { class: "muted" }, "Checking…"));
  const params = new URLSearchParams({ lat: $("lat").value, lng: $("lng").value, text: `${$("title").value} ${$("description").value}` });
  if ($("category").value) params.set("category", $("category").value);
  try {
    const found = await api(`/api/v1/reports/nearby?${params}`);
    list.replaceChildren();
    if (!found.length) list.append(el("li", { class: "muted" }, "Nothing similar nearby: please send yours."));
    for (const r of found) {
      list.append(el("li", {},
        el("a", { href: `/reports/view/${r.id}` }, r.title), " ", statusBadge(r.status),
        el("span", { class: "small muted" }, ` ${Math.round(r.distance_m)} m · ${r.follower_count} following `),
        el("button", { type: "button", class: "button small", onclick: async (e) => {
          await api(`/api/v1/reports/${r.id}/follow`, { method: "PUT" });
          e.target.replaceWith(el("span", { class: "small" }, "+1 added: you will be told about changes."));
        } }, "+1 instead")));
    }
  } catch (err) {
    list.replaceChildren(el("li", { class: "error" }, err.message));
  }
}

async function submit(event) {
  event.preventDefault();
  const error = $("form-error");
  error.hidden = true;
  saveDraft();
  if (!navigator.onLine) { error.textContent = "You are offline: the draft is saved; send it when you are back online."; error.hidden = false; return; }
  const form = new FormData();
  for (const f of FIELDS) if ($(f).value) form.append(f, $(f).value);
  form.append("anonymous", $("anonymous").checked ? "true" : "false");
  for (const file of $("photos").files) form.append("photos", file);
  $("submit").disabled = true;
  try {
    const report = await api("/api/v1/reports", { method: "POST", body: form });
    localStorage.removeItem(DRAFT);
    location.href = `/reports/view/${report.id}`;
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  } finally {
    $("submit").disabled = false;
  }
}

function item(r) {
  return el("li", { "data-id": r.id },
    el("a", { href: `/reports/view/${r.id}` }, r.title), " ", statusBadge(r.status),
    el("div", { class: "small muted" }, `${r.category_name || "uncategorised"} · ${r.department || "triage"} · ${when(r.created_at)}`));
}

async function loadMine() {
  const page = await api("/api/v1/reports?queue=mine&limit=50");
  $("mine").replaceChildren(...(page.items.length ? page.items.map(item) : [el("li", { class: "muted" }, "No reports yet.")]));
}

async function loadPublic(map) {
  const page = await api("/api/v1/reports?queue=public&limit=100");
  $("public").replaceChildren(...(page.items.length ? page.items.map(item) : [el("li", { class: "muted" }, "No reports yet.")]));
  if (map) map.pins(page.items.map((r) => ({ lat: r.lat, lng: r.lng, label: r.title })));
}

window.addEventListener("DOMContentLoaded", async () => {
  const showOffline = () => { $("offline-note").hidden = navigator.onLine; };
  window.addEventListener("online", showOffline);
  window.addEventListener("offline", showOffline);
  showOffline();
  const publicMap = makeMap("public-map", { onFail: () => { $("map-note").hidden = false; } });
  loadPublic(publicMap).catch(() => {});
  if (!$("wizard")) return;
  loadDraft();
  try {
    categories = await api("/api/v1/reports/categories");
    for (const c of categories) $("category").append(el("option", { value: c.code }, c.name_ko ? `${c.name} · ${c.name_ko}` : c.name));
    loadDraft();
  } catch { /* offline: the draft still works */ }
  const pick = makeMap("pick-map", { onPick: setLocation });
  if ($("lat").value && $("lng").value && pick) pick.show(+$("lat").value, +$("lng").value);
  $("locate").addEventListener("click", () => {
    navigator.geolocation?.getCurrentPosition(
      (p) => { setLocation(p.coords.latitude, p.coords.longitude); if (pick) pick.show(p.coords.latitude, p.coords.longitude); },
      (e) => { $("form-error").textContent = `Location unavailable: ${e.message}`; $("form-error").hidden = false; },
    );
  });
  $("photos").addEventListener("change", () => {
    $("previews").replaceChildren(...[...$("photos").files].slice(0, CONFIG.maxPhotos || 10).map((f) => el("img", { src: URL.createObjectURL(f), alt: f.name })));
  });
  for (const f of FIELDS) $(f).addEventListener("input", () => { saveDraft(); if (f === "title" || f === "description") suggest(); });
  $("anonymous").addEventListener("change", saveDraft);
  $("check-dupes").addEventListener("click", checkDupes);
  $("wizard").addEventListener("submit", submit);
  loadMine().catch(() => {});
  liveFeed((m) => { if (m.type === "notification" || m.type === "resync") loadMine().catch(() => {}); }, $("live"));
});
