// The collaborative block editor of the Docs app (and anything else that edits rich text).
//
//   import { mountEditor, toolbarCommands } from '/static/collab/editor.js'
//   const { editor, doc, awareness, destroy, status } = await mountEditor(element, {
//     service: 'doc', docId, canEdit: true, user: { name: 'Ann', color: '#2563eb' },
//     onStatus: (s) => badge.textContent = s.state })
//
// The document's providers (WebRTC, WebSocket fallback, IndexedDB, leader saves) are wired by
// connectDocument in connect.js, shared with the Sheets grid.
// The ProseMirror content lives in the Yjs XmlFragment named FRAGMENT.

import {
  Collaboration,
  CollaborationCaret,
  Editor,
  Image,
  Placeholder,
  StarterKit,
  Table,
  TableCell,
  TableHeader,
  TableRow,
  TaskItem,
  TaskList,
  Y
} from '../vendor/collab-editor.min.js'
import { colorFor, connectDocument } from './connect.js'

export { Y, colorFor }

/** Name of the Yjs XmlFragment holding the page's content (what the server extracts text from). */
export const FRAGMENT = 'default'

/** Only web and relative URLs reach an href or src (no javascript:, no data: documents). */
export const safeUrl = (value, { allowMailto = false } = {}) => {
  const text = String(value || '').trim()
  if (!text) return null
  let url
  try {
    url = new URL(text, window.location.href)
  } catch {
    return null
  }
  const ok = url.protocol === 'http:' || url.protocol === 'https:' || (allowMailto && url.protocol === 'mailto:')
  return ok ? (/^[a-z][a-z0-9+.-]*:/i.test(text) ? url.href : text) : null
}

let cssLoaded = false
const loadCss = () => {
  if (cssLoaded || document.querySelector('link[data-collab-editor]')) return
  cssLoaded = true
  const link = document.createElement('link')
  link.rel = 'stylesheet'
  link.href = new URL('./editor.css', import.meta.url).href
  link.dataset.collabEditor = ''
  document.head.appendChild(link)
}

/**
 * Mount a collaborative editor on `element`; resolves once local (IndexedDB) state is loaded.
 * Options: service, docId, canEdit, user {name, color}, signalingUrl, wsUrl, saveUrl, onStatus,
 * placeholder, token (only where no th_access cookie is sent), iceServers (STUN/TURN; none by
 * default, so peers connect directly on the same network and fall back to the WebSocket),
 * webrtc / persist (false to turn either off; viewers never use WebRTC), saveIntervalMs,
 * css (false: bring your own stylesheet).
 */
export async function mountEditor (element, {
  service,
  docId,
  canEdit = false,
  user = {},
  signalingUrl = '/collab/signaling',
  wsUrl = `/collab/ws/${service}/${docId}`,
  saveUrl = `/api/v1/${service}/save`,
  onStatus = null,
  placeholder = 'Start writing… Markdown works: # heading, - list, [ ] to-do, > quote, ``` code',
  token = null,
  iceServers = [],
  webrtc = true,
  persist = true,
  saveIntervalMs = 5000,
  css = true
} = {}) {
  if (!element) throw new Error('mountEditor: no element')
  if (!service || !docId) throw new Error('mountEditor: service and docId are required')
  if (css) loadCss()
  const conn = await connectDocument({
    service, docId, canEdit, user, signalingUrl, wsUrl, saveUrl, onStatus, token, iceServers, webrtc, persist, saveIntervalMs
  })
  const { doc, awareness } = conn
  const { name, color } = conn.user

  const editor = new Editor({
    element,
    editable: !!canEdit,
    extensions: [
      StarterKit.configure({
        undoRedo: false, // Collaboration brings a Yjs-aware undo manager
        link: { openOnClick: !canEdit, autolink: true, defaultProtocol: 'https' }
      }),
      Collaboration.configure({ document: doc, field: FRAGMENT }),
      CollaborationCaret.configure({ provider: { awareness }, user: { name, color } }),
      Placeholder.configure({ placeholder: canEdit ? placeholder : '' }),
      Image.configure({ allowBase64: false }),
      Table.configure({ resizable: !!canEdit }),
      TableRow,
      TableHeader,
      TableCell,
      TaskList,
      TaskItem.configure({ nested: true })
    ],
    editorProps: {
      attributes: {
        class: 'th-editor',
        'aria-label': 'Page content',
        'aria-readonly': canEdit ? 'false' : 'true'
      }
    }
  })
  conn.report({})

  let destroyed = false
  const destroy = () => {
    if (destroyed) return
    destroyed = true
    editor.destroy()
    conn.destroy()
  }

  return { editor, doc, awareness, saver: conn.saver, destroy, status: conn.status }
}

/**
 * The block commands a toolbar needs, in toolbar order: `{id: {label, title, run(arg), isActive(), can()}}`.
 * `link.run(url)` sets (or with no url removes) a link; `image.run(url, alt)` inserts an image by
 * URL; `table.run({rows, cols})` inserts a table. Unsafe URLs are refused (run returns false).
 */
export function toolbarCommands (editor) {
  const chain = () => editor.chain().focus()
  const probe = () => editor.can().chain().focus()
  const entry = (label, title, run, isActive = () => false, can = () => editor.isEditable) => ({ label, title, run, isActive, can })
  const heading = (level) => entry(
    `H${level}`, `Heading ${level}`,
    () => chain().toggleHeading({ level }).run(),
    () => editor.isActive('heading', { level }),
    () => editor.isEditable && probe().toggleHeading({ level }).run()
  )
  const toggle = (label, title, command, name) => entry(
    label, title,
    () => chain()[command]().run(),
    () => editor.isActive(name),
    () => editor.isEditable && probe()[command]().run()
  )
  return {
    paragraph: entry('Text', 'Plain text', () => chain().setParagraph().run(), () => editor.isActive('paragraph')),
    heading1: heading(1),
    heading2: heading(2),
    heading3: heading(3),
    bold: toggle('B', 'Bold (Ctrl+B)', 'toggleBold', 'bold'),
    italic: toggle('I', 'Italic (Ctrl+I)', 'toggleItalic', 'italic'),
    strike: toggle('S', 'Strikethrough', 'toggleStrike', 'strike'),
    code: toggle('</>', 'Inline code', 'toggleCode', 'code'),
    bulletList: toggle('•', 'Bulleted list', 'toggleBulletList', 'bulletList'),
    orderedList: toggle('1.', 'Numbered list', 'toggleOrderedList', 'orderedList'),
    taskList: toggle('☑', 'To-do list', 'toggleTaskList', 'taskList'),
    blockquote: toggle('❝', 'Quote', 'toggleBlockquote', 'blockquote'),
    codeBlock: toggle('{ }', 'Code block', 'toggleCodeBlock', 'codeBlock'),
    divider: entry('—', 'Divider', () => chain().setHorizontalRule().run()),
    link: entry('Link', 'Link (empty to remove)', (url) => {
      if (!url) return chain().extendMarkRange('link').unsetLink().run()
      const href = safeUrl(url, { allowMailto: true })
      return href ? chain().extendMarkRange('link').setLink({ href }).run() : false
    }, () => editor.isActive('link')),
    table: entry('Table', 'Insert table', ({ rows = 3, cols = 3, withHeaderRow = true } = {}) =>
      chain().insertTable({ rows, cols, withHeaderRow }).run(), () => editor.isActive('table')),
    image: entry('Image', 'Image by URL', (url, alt = '') => {
      const src = safeUrl(url)
      return src ? chain().setImage({ src, alt }).run() : false
    })
  }
}
