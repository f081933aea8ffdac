// Links page: save box, live status badges over /api/v1/links/ws, grid/list toggle.
const list = document.getElementById('links');
const message = document.getElementById('save-message');

function esc(text) {
  const div = document.createElement('div');
  div.textContent = text ?? '';
  return div.innerHTML;
}

function card(link) {
  const tags = (link.tags || []).slice(0, 6)
    .map((t) => `<span class="badge ${t.is_auto_generated ? 'badge--ai' : ''}">${esc(t.name)}</span>`).join(' ');
  const thumb = link.thumbnails && link.thumbnails.medium
    ? `<img src="${esc(link.thumbnails.medium)}" alt="" loading="lazy" width="150" height="150">`
    : '<span class="thumb-empty">…</span>';
  const error = link.status === 'failed' && link.processing_error
    ? `<div class="small error">${esc(link.processing_error)}</div>` : '';
  return `<a href="/links/view/${link.id}" class="thumb">${thumb}</a><div class="link-body">
    <a class="link-title" href="/links/view/${link.id}">${esc(link.title || link.url)}</a>
    <div class="small muted ellipsis">${esc(link.site_name || link.normalized_url)}</div>
    <div class="small"><span class="badge status status--${esc(link.status)}" data-status>${esc(link.status)}</span> ${tags}</div>${error}</div>`;
}

function upsert(link) {
  let item = list.querySelector(`[data-id="${link.id}"]`);
  if (!item) {
    item = document.createElement('li');
    item.className = 'link-card';
    item.dataset.id = link.id;
    list.prepend(item);
    document.getElementById('empty')?.remove();
  }
  item.innerHTML = card(link);
}

document.getElementById('save-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = document.getElementById('save-url');
  const response = await fetch('/api/v1/links', {
    method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({url: input.value, source: 'web'}),
  });
  const body = await response.json();
  if (!response.ok) { message.textContent = body.detail || 'could not save'; return; }
  message.textContent = body.duplicate ? 'Already saved.' : 'Saved. Fetching the page…';
  input.value = '';
  upsert(body);
});

async function refresh(id) {
  const response = await fetch(`/api/v1/links/${id}`);
  if (response.ok) upsert(await response.json());
}

function connect(delay = 1000) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${location.host}/api/v1/links/ws`);
  socket.onmessage = (event) => {
    const data = JSON.parse(event.data);
    if (data.type === 'resync') { location.reload(); return; }
    if (data.type !== 'link.status') return;
    const badge = list.querySelector(`[data-id="${data.id}"] [data-status]`);
    if (badge) { badge.textContent = data.status; badge.className = `badge status status--${data.status}`; }
    if (data.status === 'completed' || data.status === 'failed') refresh(data.id);
  };
  socket.onopen = () => { delay = 1000; };
  socket.onclose = () => setTimeout(() => connect(Math.min(delay * 2, 30000)), delay);
}
connect();

for (const button of document.querySelectorAll('[data-view]')) {
  button.addEventListener('click', () => {
    list.className = button.dataset.view === 'grid' ? 'links-grid' : 'links-list';
    localStorage.setItem('links-view', button.dataset.view);
  });
}
if (localStorage.getItem('links-view') === 'list') list.className = 'links-list';
if ('serviceWorker' in navigator === false) { /* share target needs only the manifest */ }
