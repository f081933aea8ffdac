// Entry of vendor/collab-editor.min.js: everything static/collab/editor.js needs, in ONE bundle
// so yjs (and prosemirror) exist once: y-webrtc, y-websocket, y-indexeddb and the TipTap binding
// must share the same Yjs instance or collaboration silently breaks ("Yjs was already imported").
export * as Y from 'yjs'
export { WebrtcProvider } from 'y-webrtc'
export { WebsocketProvider } from 'y-websocket'
export { IndexeddbPersistence } from 'y-indexeddb'
export { Awareness } from 'y-protocols/awareness'

export { Editor, Extension, Mark, Node, mergeAttributes } from '@tiptap/core'
export { StarterKit } from '@tiptap/starter-kit'
export { Collaboration } from '@tiptap/extension-collaboration'
export { CollaborationCaret } from '@tiptap/extension-collaboration-caret'
export { Image } from '@tiptap/extension-image'
export { Table, TableRow, TableCell, TableHeader } from '@tiptap/extension-table'
export { TaskList, TaskItem } from '@tiptap/extension-list'
export { Placeholder } from '@tiptap/extensions'
