// Docs page view: the collaborative editor (editor.js), its toolbar, title/icon/cover, sharing.
import { api, message } from './docs.js'

const root = document.getElementById('doc-page')
const pageId = root.dataset.pageId
const canEdit = root.dataset.canEdit === 'true'
const $ = (id) => document.getElementById(id)
const run = async (fn) => { try { await fn() } catch (err) { message(err.message, true) } }
const patch = (json) => api(`/pages/${pageId}`, { method: 'PATCH', json })

// The editor ------------------------------------------------------------------------------------

function showEditorError (text) {
  const el = $('doc-editor-error')
  el.textContent = text
  el.hidden = false
  $('doc-status').textContent = 'offline'
}

function buildToolbar (editor, toolbarCommands) {
  const bar = $('doc-toolbar')
  if (!bar) return
  const commands = toolbarCommands(editor)
  const buttons = []
  for (const [id, command] of Object.entries(commands)) {
    const button = document.createElement('button')
    button.type = 'button'
    button.textContent = command.label
    button.title = command.title
    button.dataset.command = id
    button.addEventListener('mousedown', (event) => event.preventDefault()) // keep the selection
    button.addEventListener('click', () => {
      if (id === 'link') {
        const url = prompt('Link URL (empty to remove)', editor.getAttributes('link').href || '')
        if (url !== null && command.run(url.trim()) === false) message('That URL is not allowed', true)
      } else if (id === 'image') {
        const url = prompt('Image URL')
        if (url && command.run(url.trim()) === false) message('That URL is not allowed', true)
      } else command.run()
    })
    bar.append(button)
    buttons.push([button, command])
  }
  const upload = document.createElement('label')
  upload.className = 'doc-upload'
  upload.innerHTML = '<button type="button" title="Upload an image">⬆ Image</button>'
  const input = Object.assign(document.createElement('input'), { type: 'file', accept: 'image/*', hidden: true })
  upload.append(input)
  upload.querySelector('button').addEventListener('click', () => input.click())
  input.addEventListener('change', () => run(async () => {
    if (!input.files[0]) return
    const form = new FormData()
    form.append('file', input.files[0])
    const image = await api(`/pages/${pageId}/images`, { method: 'POST', body: form })
    commands.image.run(image.src, input.files[0].name)
    input.value = ''
  }))
  bar.append(upload)
  const refresh = () => {
    for (const [button, command] of buttons) {
      button.setAttribute('aria-pressed', String(!!command.isActive()))
      button.disabled = !command.can()
    }
  }
  editor.on('selectionUpdate', refresh)
  editor.on('transaction', refresh)
  refresh()
}

async function start () {
  let mod
  try {
    mod = await import('/static/collab/editor.js')
  } catch (err) {
    showEditorError('The editor could not be loaded, so this page cannot be shown or edited right now. ' +
      'Export it as Markdown or HTML from the ⋯ menu, or try again later.')
    console.error(err)
    return
  }
  try {
    const name = root.dataset.userName
    const mounted = await mod.mountEditor($('doc-editor'), {
      service: 'doc',
      docId: root.dataset.collabId,
      canEdit,
      user: { name, color: mod.colorFor ? mod.colorFor(name) : undefined },
      onStatus: (s) => {
        const label = s.denied ? 'no access' : !s.online ? 'offline' : s.unsaved ? 'saving…' : s.synced ? 'saved' : s.state
        $('doc-status').textContent = label
        const peers = $('doc-peers')
        peers.hidden = !(s.peers > 1)
        peers.textContent = `${s.peers} here`
      }
    })
    window.docEditor = mounted
    if (canEdit) buildToolbar(mounted.editor, mod.toolbarCommands)
  } catch (err) {
    showEditorError(`The editor failed to start: ${err.message}`)
    console.error(err)
  }
}
start()

// Title, icon, cover, favorite, move, trash -----------------------------------------------------

const title = $('doc-title')
if (canEdit && title) {
  let saved = title.textContent
  const save = () => run(async () => {
    const value = title.textContent.replace(/\s+/g, ' ').trim()
    if (value === saved) return
    await patch({ title: value })
    saved = value
    document.title = `${value || 'Untitled'} · Docs · townhall`
    document.querySelectorAll(`a[data-page-id="${pageId}"]`).forEach((a) => {
      a.lastChild.textContent = ` ${value || 'Untitled'}`
    })
  })
  title.addEventListener('blur', save)
  // Also while typing (debounced), so a title is not lost when the user navigates right away.
  let pending = null
  title.addEventListener('input', () => { clearTimeout(pending); pending = setTimeout(save, 700) })
  title.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') { event.preventDefault(); window.docEditor?.editor.commands.focus('start') }
  })
}

$('doc-icon-set')?.addEventListener('click', () => {
  const icon = prompt('An emoji for this page (empty to remove)', $('doc-icon').textContent.trim())
  if (icon === null) return
  run(async () => { const page = await patch({ icon: icon.trim() || null }); $('doc-icon').textContent = page.icon || '' })
})
$('doc-cover-url')?.addEventListener('click', () => {
  const url = prompt('Cover image URL (https://…)')
  if (url) run(async () => { await patch({ cover: url.trim() }); location.reload() })
})
$('doc-cover-clear')?.addEventListener('click', () => run(async () => { await patch({ cover: '' }); location.reload() }))
$('doc-cover-file')?.addEventListener('change', (event) => run(async () => {
  const form = new FormData()
  form.append('file', event.target.files[0])
  const image = await api(`/pages/${pageId}/images`, { method: 'POST', body: form })
  await patch({ cover: image.key })
  location.reload()
}))
$('doc-favorite')?.addEventListener('click', (event) => run(async () => {
  const on = event.target.getAttribute('aria-pressed') !== 'true'
  const page = await api(`/pages/${pageId}/favorite`, { method: on ? 'PUT' : 'DELETE' })
  event.target.setAttribute('aria-pressed', String(page.favorite))
  event.target.textContent = page.favorite ? '★' : '☆'
}))
$('doc-move')?.addEventListener('change', (event) => run(async () => {
  await api(`/pages/${pageId}/move`, { method: 'POST', json: { parent_id: event.target.value || null } })
  location.reload()
}))
$('doc-archive')?.addEventListener('click', () => run(async () => {
  const page = await api(`/pages/${pageId}/archive`, { method: 'POST' })
  location.href = `/docs?ws=${page.workspace_id}`
}))

// Sharing ---------------------------------------------------------------------------------------

const dialog = $('doc-share')
async function loadShares () {
  const [shares, page] = await Promise.all([api(`/pages/${pageId}/shares`), api(`/pages/${pageId}`)])
  const list = $('doc-share-list')
  list.replaceChildren(...shares.map((s) => {
    const li = document.createElement('li')
    li.textContent = `${s.user.display_name} <${s.user.email}> · ${s.role === 'editor' ? 'can edit' : 'can view'}`
    const remove = Object.assign(document.createElement('button'), { type: 'button', className: 'link danger', textContent: 'Remove' })
    remove.addEventListener('click', () => run(async () => { await api(`/pages/${pageId}/shares/${s.user.id}`, { method: 'DELETE' }); await loadShares() }))
    li.append(remove)
    return li
  }))
  if (!page.public) $('doc-public-url').value = ''
  $('doc-public-off').hidden = !page.public
  $('doc-public-on').textContent = page.public ? 'Show link' : 'Create link'
}
$('doc-share-open')?.addEventListener('click', () => { dialog.showModal(); run(loadShares) })
$('doc-share-form')?.addEventListener('submit', (event) => {
  event.preventDefault()
  const error = $('doc-share-error')
  error.hidden = true
  api(`/pages/${pageId}/shares`, { method: 'POST', json: { email: $('doc-share-email').value.trim(), role: $('doc-share-role').value } })
    .then(() => { $('doc-share-email').value = ''; return loadShares() })
    .catch((err) => { error.textContent = err.message; error.hidden = false })
})
$('doc-public-on')?.addEventListener('click', () => run(async () => {
  const link = await api(`/pages/${pageId}/public-link`, { method: 'POST' })
  $('doc-public-url').value = link.url
  $('doc-public-url').select()
  await loadShares()
  $('doc-public-url').value = link.url
}))
$('doc-public-off')?.addEventListener('click', () => run(async () => {
  await api(`/pages/${pageId}/public-link`, { method: 'DELETE' })
  await loadShares()
}))
