// Shared helpers of the Reports pages: API calls, safe DOM building, maps, the live feed.
export const CONFIG = window.REPORTS_CONFIG || {};

export async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const detail = (body && (body.detail || body.title)) || response.statusText;
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return body;
}

export function postJSON(path, data, method = "POST") {
  return api(path, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });
}

// el("a", {href: "/x"}, "text", child): text is always set as text, never parsed as HTML.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function statusBadge(status) {
  return el("span", { class: `badge rp-status rp-status-${status}` }, status.replace("_", " "));
}

export function when(iso) {
  return new Date(iso).toLocaleString();
}

// A Leaflet map when the library and tiles load; otherwise the element hides and `onFail` runs.
export function makeMap(id, { onPick, onFail } = {}) {
  const node = document.getElementById(id);
  if (!node) return null;
  const fail = () => { node.classList.add("rp-off"); if (onFail) onFail(); };
  if (!window.L || !CONFIG.tileUrl) { fail(); return null; }
  const map = window.L.map(node).setView(CONFIG.center, 13);
  let loaded = false;
  let errors = 0;
  const tiles = window.L.tileLayer(CONFIG.tileUrl, { maxZoom: 19, attribution: "© OpenStreetMap" });
  tiles.on("tileload", () => { loaded = true; });
  tiles.on("tileerror", () => { errors += 1; if (!loaded && errors >= 4) fail(); });
  tiles.addTo(map);
  setTimeout(() => { if (!loaded) fail(); }, 8000);
  let marker = null;
  if (onPick) {
    map.on("click", (e) => {
      if (marker) marker.setLatLng(e.latlng); else marker = window.L.marker(e.latlng).addTo(map);
      onPick(e.latlng.lat, e.latlng.lng);
    });
  }
  return {
    map,
    show(lat, lng) {
      if (marker) marker.setLatLng([lat, lng]); else marker = window.L.marker([lat, lng]).addTo(map);
      map.setView([lat, lng], 16);
    },
    pins(points) {
      for (const p of points) window.L.circleMarker([p.lat, p.lng], { radius: 6 }).addTo(map).bindPopup(p.label || "");
    },
  };
}

// The user's live notifications; reconnects with backoff; `onEvent(message)`.
export function liveFeed(onEvent, badge) {
  let delay = 500;
  const connect = () => {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${proto}://${location.host}/api/v1/reports/ws`);
    socket.onmessage = (e) => {
      const message = JSON.parse(e.data);
      if (message.type === "ready") { delay = 500; if (badge) badge.textContent = "live"; }
      onEvent(message);
    };
    socket.onclose = (e) => {
      if (badge) badge.textContent = e.code === 4401 ? "signed out" : "reconnecting…";
      if (e.code === 4401) return;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  };
  connect();
}

export function registerWorker() {
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/reports/sw.js", { scope: "/reports" }).catch(() => {});
}
