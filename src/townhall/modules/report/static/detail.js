// One report: photos, map, timeline, comments; staff get the AI analysis, audit trail and actions.
import { api, el, makeMap, postJSON, statusBadge, when } from "./common.js";

const root = document.getElementById("report");
const id = root.dataset.id;
const signedIn = root.dataset.signedIn === "true";
const NEXT = { received: ["in_progress", "rejected"], assigned: ["in_progress", "resolved", "rejected", "received"],
  in_progress: ["resolved", "rejected", "assigned"], resolved: ["in_progress"], rejected: ["received"], duplicate: ["received"] };

function action(label, fields, run) {
  const error = el("p", { class: "error", hidden: true });
  const form = el("form", { onsubmit: async (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form).entries());
    try { await run(data); await render(); } catch (err) { error.textContent = err.message; error.hidden = false; }
  } }, el("h3", {}, label), ...fields, error, el("button", {}, label));
  return form;
}

const input = (name, label, attrs = {}) => el("label", {}, label, el("input", { name, ...attrs }));

async function render() {
  const r = await api(`/api/v1/reports/${id}`);
  const staff = !r.masked;
  const parts = [
    el("h1", {}, r.title, " ", statusBadge(r.status)),
    el("p", { class: "muted" }, `${r.category_name || "uncategorised"} · ${r.department || "triage queue"} · priority ${r.priority} · by ${r.reporter || "anonymous"} · ${when(r.created_at)}`),
    el("p", {}, r.description),
    el("p", { class: "small" }, r.address, ` (${r.lat.toFixed(5)}, ${r.lng.toFixed(5)})`),
    el("div", { class: "rp-photos" }, r.photos.map((p) => el("a", { href: staff && p.original_url ? p.original_url : p.url }, el("img", { src: p.url, alt: "photo" })))),
    el("div", { id: "detail-map", class: "rp-map" }),
    el("h2", {}, "Timeline"),
    el("ul", { class: "rp-list" }, r.updates.length ? r.updates.map((u) => el("li", {}, statusBadge(u.to_status), ` ${u.note} `, el("span", { class: "small muted" }, when(u.created_at)))) : el("li", { class: "muted" }, "Received, waiting for a department.")),
    el("h2", {}, "Comments"),
    el("ul", { class: "rp-list" }, r.comments.map((c) => el("li", {}, c.internal ? el("span", { class: "badge" }, "internal") : null, ` ${c.author}: ${c.body} `, el("span", { class: "small muted" }, when(c.created_at))))),
  ];
  if (signedIn) {
    parts.push(el("p", {}, el("button", { class: "secondary", onclick: async () => {
      await api(`/api/v1/reports/${id}/follow`, { method: r.following ? "DELETE" : "PUT" }); await render();
    } }, r.following ? `Unfollow (${r.follower_count})` : `+1 / follow (${r.follower_count})`)));
    const fields = [el("label", {}, "Comment", el("textarea", { name: "body", rows: 2, required: true }))];
    if (staff) fields.push(el("label", { class: "rp-check" }, el("input", { type: "checkbox", name: "internal", value: "true" }), "Internal (staff only)"));
    parts.push(action("Comment", fields, (d) => postJSON(`/api/v1/reports/${id}/comments`, { body: d.body, internal: d.internal === "true" })));
  }
  if (staff) {
    const a = r.analysis;
    parts.push(el("h2", {}, "AI analysis"), a ? el("dl", { class: "facts" },
      el("dt", {}, "Suggested category"), el("dd", {}, `${a.category || "none"} (${a.category_confidence})`),
      el("dt", {}, "Priority"), el("dd", {}, `${a.priority} (${a.priority_confidence})`),
      el("dt", {}, "Summary"), el("dd", {}, `${a.summary} (${a.summary_confidence})`),
      el("dt", {}, "Text model"), el("dd", {}, `${a.text_model.provider} · ${a.text_model.model}`),
      el("dt", {}, "Vision model"), el("dd", {}, a.vision_model ? `${a.vision_model.provider} · ${a.vision_model.model}` : "—"),
      el("dt", {}, "Objects"), el("dd", {}, (a.detections || []).map((d) => `${d.label} ${d.confidence}`).join(", ") || "—"),
      el("dt", {}, "Routing"), el("dd", {}, r.routing)) : el("p", { class: "muted" }, "Analysis pending…"));
    const status = el("select", { name: "status" }, (NEXT[r.status] || []).map((s) => el("option", { value: s }, s)));
    parts.push(el("div", { class: "rp-grid rp-actions" },
      action("Assign to me", [input("note", "Note")], (d) => postJSON(`/api/v1/reports/${id}/assign`, { note: d.note })),
      action("Change status", [el("label", {}, "Status", status), input("note", "Note (required)", { required: true })],
        (d) => postJSON(`/api/v1/reports/${id}/status`, d)),
      action("Override triage", [input("category", "Category code"), input("priority", "Priority 1-5", { type: "number", min: 1, max: 5 }),
        input("department_id", "Department id"), input("note", "Reason (required)", { required: true })],
        (d) => postJSON(`/api/v1/reports/${id}/override`, Object.fromEntries(Object.entries({ ...d, priority: d.priority ? +d.priority : null }).filter(([, v]) => v !== "" && v !== null)))),
      action("Merge as duplicate", [input("into_id", "Original report id", { required: true }), input("note", "Note")],
        (d) => postJSON(`/api/v1/reports/${id}/merge`, d))));
    try {
      const audit = await api(`/api/v1/reports/audit?report_id=${id}`);
      parts.push(el("h2", {}, "Audit trail"), el("table", {}, el("tbody", {}, audit.map((x) => el("tr", {},
        el("td", { class: "small" }, when(x.created_at)), el("td", {}, x.action), el("td", { class: "small" }, x.target),
        el("td", { class: "small muted" }, `${JSON.stringify(x.before)} → ${JSON.stringify(x.after)}`))))));
    } catch { /* not allowed */ }
  }
  root.replaceChildren(...parts);
  const map = makeMap("detail-map");
  if (map) map.show(r.lat, r.lng);
}

render().catch((e) => root.replaceChildren(el("p", { class: "error" }, e.message)));
