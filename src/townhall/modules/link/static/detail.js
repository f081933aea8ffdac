// Link detail: note and tag editing (optimistic version check), retry, delete.
const article = document.querySelector('.link-detail');
const id = article.dataset.id;
const out = document.getElementById('edit-message');

document.getElementById('edit-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const tags = String(form.get('tags') || '').split(',').map((t) => t.trim()).filter(Boolean);
  const response = await fetch(`/api/v1/links/${id}`, {
    method: 'PATCH', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({note: form.get('note'), tags, version: Number(article.dataset.version)}),
  });
  const body = await response.json();
  if (response.ok) { article.dataset.version = body.version; out.textContent = 'Saved.'; }
  else out.textContent = response.status === 409 ? 'Changed elsewhere: reload to see the new version.' : (body.detail || 'failed');
});

document.getElementById('retry')?.addEventListener('click', async () => {
  const response = await fetch(`/api/v1/links/${id}/retry`, {method: 'POST'});
  if (response.ok) location.reload();
});

document.getElementById('delete').addEventListener('click', async () => {
  if (!confirm('Delete this link?')) return;
  const response = await fetch(`/api/v1/links/${id}`, {method: 'DELETE'});
  if (response.ok) location.href = '/links';
});
