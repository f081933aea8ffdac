// Staff console: department inbox, triage queue, dashboard; refreshed live.
import { api, el, liveFeed, makeMap, statusBadge, when } from "./common.js";

const $ = (id) => document.getElementById(id);
let queue = "inbox";

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 6000);
}

async function loadQueue() {
  $("queue-view").hidden = false;
  $("stats-view").hidden = true;
  const page = await api(`/api/v1/reports?queue=${queue}&limit=200`);
  $("rows").replaceChildren(...page.items.map((r) => el("tr", { "data-id": r.id },
    el("td", {}, el("a", { href: `/reports/view/${r.id}` }, r.title)),
    el("td", {}, statusBadge(r.status)),
    el("td", {}, String(r.priority)),
    el("td", {}, r.category_name || "—"),
    el("td", {}, r.department || "triage"),
    el("td", { class: "small" }, when(r.created_at)))));
  if (!page.items.length) $("rows").append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "Nothing here.")));
}

async function loadStats() {
  $("queue-view").hidden = true;
  $("stats-view").hidden = false;
  const s = await api("/api/v1/reports/stats");
  const table = (title, data) => el("div", { class: "card" }, el("h3", {}, title),
    el("table", {}, el("tbody", {}, Object.entries(data).map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, String(v)))))));
  $("stats").replaceChildren(el("div", { class: "rp-grid" },
    table("By status", s.by_status), table("By category", s.by_category), table("By department", s.by_department),
    el("div", { class: "card" }, el("h3", {}, "Time to resolve"),
      el("p", {}, `${s.resolved} resolved · average ${s.avg_resolve_hours ?? "—"} h · median ${s.median_resolve_hours ?? "—"} h`))));
  const map = makeMap("heat-map");
  if (map) map.pins(s.open_points.map(([lat, lng]) => ({ lat, lng })));
}

function show(name) {
  queue = name;
  for (const b of document.querySelectorAll("[data-queue]")) b.classList.toggle("on", b.dataset.queue === name);
  (name === "stats" ? loadStats() : loadQueue()).catch((e) => toast(e.message));
}

window.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("[data-queue]")) b.addEventListener("click", () => show(b.dataset.queue));
  show("inbox");
  liveFeed((m) => {
    if (m.type === "notification") {
      toast(m.notification.title);
      if (queue !== "stats") loadQueue().catch(() => {});
    }
  }, $("live"));
});
