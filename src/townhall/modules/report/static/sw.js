// Reports service worker: the app shell works offline (the draft lives in localStorage).
const CACHE = "townhall-reports-v1";
const SHELL = ["/reports", "/reports/static/common.js", "/reports/static/citizen.js", "/reports/static/reports.css",
  "/reports/static/vendor/leaflet/leaflet.js", "/reports/static/vendor/leaflet/leaflet.css", "/static/app.css"];

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (e) => {
  e.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  // Network first (fresh pages and data), the cached shell when offline.
  e.respondWith(fetch(e.request).then((response) => {
    if (response.ok && SHELL.includes(url.pathname)) {
      const copy = response.clone();
      caches.open(CACHE).then((c) => c.put(e.request, copy));
    }
    return response;
  }).catch(() => caches.match(e.request).then((hit) => hit || caches.match("/reports"))));
});
