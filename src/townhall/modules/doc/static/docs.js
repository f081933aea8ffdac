// Docs: sidebar and tree actions shared by every Docs page (new page, trash, import, drawer).

export const message = (text, isError = false) => {
  const el = document.getElementById('doc-message')
  if (el) { el.textContent = text; el.classList.toggle('error', isError) }
}

/** Call the Docs API; throws Error(detail) on a problem+json answer. */
export async function api (path, { method = 'GET', json, body } = {}) {
  const init = { method, credentials: 'same-origin', headers: {} }
  if (json !== undefined) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(json) }
  else if (body !== undefined) init.body = body
  const response = await fetch(`/api/v1/doc${path}`, init)
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`
    try { detail = (await response.json()).detail || detail } catch {}
    throw new Error(detail)
  }
  return response.status === 204 ? null : response.json()
}

const run = async (fn) => { try { await fn() } catch (err) { message(err.message, true) } }

document.addEventListener('click', (event) => {
  const target = event.target.closest('button')
  if (!target) return
  if (target.matches('[data-new-page]')) {
    run(async () => {
      const page = await api(`/workspaces/${target.dataset.workspace}/pages`, {
        method: 'POST', json: { title: '', parent_id: target.dataset.parent || null } })
      location.href = `/docs/p/${page.id}`
    })
  } else if (target.dataset.restore) {
    run(async () => { const p = await api(`/pages/${target.dataset.restore}/restore`, { method: 'POST' }); location.href = `/docs/p/${p.id}` })
  } else if (target.dataset.destroy) {
    if (!confirm('Delete this page and its subpages forever?')) return
    run(async () => { await api(`/pages/${target.dataset.destroy}`, { method: 'DELETE' }); location.reload() })
  } else if (target.matches('[data-toggle-sidebar]')) {
    document.querySelector('.doc-shell')?.classList.toggle('doc-sidebar-open')
  } else if (target.classList.contains('doc-twisty')) {
    const list = target.closest('li')?.querySelector(':scope > ul')
    if (list) {
      list.hidden = !list.hidden
      target.textContent = list.hidden ? '▸' : '▾'
      target.setAttribute('aria-expanded', String(!list.hidden))
      target.setAttribute('aria-label', list.hidden ? 'Expand' : 'Collapse')
    }
  }
})

const importForm = document.getElementById('doc-import')
importForm?.addEventListener('submit', (event) => {
  event.preventDefault()
  const file = document.getElementById('doc-import-file').files[0]
  if (!file) return message('Choose a Markdown file first', true)
  run(async () => {
    const markdown = await file.text()
    const title = file.name.replace(/\.(md|markdown|txt)$/i, '')
    const page = await api(`/workspaces/${importForm.dataset.workspace}/import`, { method: 'POST', json: { markdown, title: /^#\s/m.test(markdown) ? null : title } })
    location.href = `/docs/p/${page.id}`
  })
})

// Inline handlers would need 'unsafe-inline' in the Content-Security-Policy.
document.addEventListener('change', (event) => {
  if (event.target.matches?.('[data-submit-on-change]')) event.target.form?.submit()
})
