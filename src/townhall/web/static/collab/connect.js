// One collaborative Yjs document in the browser, whatever edits it (the Docs editor, the Sheets grid).
//
//   import { connectDocument } from '/static/collab/connect.js'
//   const conn = await connectDocument({ service: 'sheet', docId, canEdit: true,
//     user: { name: 'Ann', color: '#2563eb' }, onStatus: (s) => badge.textContent = s.state })
//   conn.doc, conn.awareness, conn.status(), conn.destroy()
//
// Wiring (seed 000): peers sync over WebRTC through the server's y-webrtc signaling relay; the
// y-websocket connection to the server room is the fallback (and reaches peers WebRTC cannot);
// the leader among the editors POSTs the document to the save API (leader.js); y-indexeddb keeps
// the document in the browser so edits made offline survive a reload and merge when back online.

import {
  Awareness,
  IndexeddbPersistence,
  WebrtcProvider,
  WebsocketProvider,
  Y
} from '../vendor/collab-editor.min.js'
import { LeaderSaver, electLeader, postUpdate } from '/collab/static/leader.js'

export { Y }

const COLOR = /^#[0-9a-fA-F]{6}$/
// Close codes of /collab/ws that retrying cannot fix (collab/realtime.py); 4408 "too slow" is not one.
const DENIED = new Set([4401, 4403, 4404])
const PALETTE = ['#2563eb', '#db2777', '#16a34a', '#ea580c', '#7c3aed', '#0891b2', '#ca8a04', '#dc2626']

/** A stable colour for a name, for callers that give none (carets need #rrggbb). */
export const colorFor = (name) => {
  let h = 0
  for (const ch of String(name || '')) h = (h * 31 + ch.codePointAt(0)) >>> 0
  return PALETTE[h % PALETTE.length]
}

/** The user's display name and a #rrggbb colour (derived from the name when missing or bad). */
export const normalizeUser = (user = {}) => {
  const name = String(user.name || 'Anonymous').slice(0, 64)
  return { name, color: COLOR.test(user.color || '') ? user.color : colorFor(name) }
}

/** `path` as an absolute ws:// or wss:// URL on this page's origin (absolute URLs pass through). */
const wsUrlOf = (path) => {
  const url = new URL(path, window.location.href)
  if (url.protocol === 'http:') url.protocol = 'ws:'
  if (url.protocol === 'https:') url.protocol = 'wss:'
  return url
}

/**
 * Connect a new Y.Doc to `service`/`docId`; resolves once local (IndexedDB) state is loaded.
 * Options: service, docId, canEdit, user {name, color}, signalingUrl, wsUrl, saveUrl, onStatus,
 * token (only where no th_access cookie is sent), iceServers (STUN/TURN; none by default, so
 * peers connect directly on the same network and fall back to the WebSocket), webrtc / persist
 * (false to turn either off; viewers never use WebRTC), saveIntervalMs.
 * Returns {doc, awareness, saver, user, status(), destroy()}; status().state is one of
 * connecting | live | offline | denied.
 */
export async function connectDocument ({
  service,
  docId,
  canEdit = false,
  user = {},
  signalingUrl = '/collab/signaling',
  wsUrl = `/collab/ws/${service}/${docId}`,
  saveUrl = `/api/v1/${service}/save`,
  onStatus = null,
  token = null,
  iceServers = [],
  webrtc = true,
  persist = true,
  saveIntervalMs = 5000
} = {}) {
  if (!service || !docId) throw new Error('connectDocument: service and docId are required')
  const who = normalizeUser(user)
  const topic = `townhall:${service}:${docId}` // the signaling topic the server authorizes
  const doc = new Y.Doc()
  const awareness = new Awareness(doc)
  awareness.setLocalStateField('user', who)
  const current = {
    state: 'connecting',
    online: navigator.onLine,
    websocket: 'connecting',
    synced: false,
    signaling: false,
    webrtcPeers: 0,
    peers: 1,
    persisted: false,
    leader: false,
    saves: 0,
    unsaved: false,
    canEdit: !!canEdit,
    denied: null
  }
  let destroyed = false
  let rtc = null
  // y-webrtc lists peers as soon as they announce; only an open data channel is a connection.
  const rtcConnected = () => rtc && rtc.room
    ? [...rtc.room.webrtcConns.values()].filter((conn) => conn.connected).length
    : 0
  const report = (changes) => {
    Object.assign(current, changes, { webrtcPeers: rtcConnected() })
    const live = current.online && ((current.websocket === 'connected' && current.synced) || current.webrtcPeers > 0)
    current.state = current.denied ? 'denied' : !current.online ? 'offline' : live ? 'live' : 'connecting'
    if (onStatus && !destroyed) {
      try {
        onStatus({ ...current })
      } catch (err) {
        console.error('onStatus failed', err)
      }
    }
  }

  // Local state first: what this browser saved (including offline edits) shows at once.
  let local = null
  if (persist && typeof indexedDB !== 'undefined') {
    local = new IndexeddbPersistence(topic, doc)
    await Promise.race([local.whenSynced, new Promise((resolve) => setTimeout(resolve, 3000))])
    report({ persisted: true })
  }

  // y-websocket wants (server URL, room name) and appends '/<room>?<params>' itself.
  const wsTarget = wsUrlOf(wsUrl)
  const params = Object.fromEntries(wsTarget.searchParams)
  if (token) params.token = token
  wsTarget.search = ''
  const cut = wsTarget.pathname.lastIndexOf('/')
  const room = decodeURIComponent(wsTarget.pathname.slice(cut + 1))
  wsTarget.pathname = wsTarget.pathname.slice(0, cut)
  const websocket = new WebsocketProvider(wsTarget.href.replace(/\/$/, ''), room, doc, {
    awareness,
    params,
    disableBc: true, // y-webrtc already links this browser's tabs
    connect: navigator.onLine,
    shouldReconnect: (event) => !DENIED.has(event.code)
  })
  websocket.on('closed', ({ code, reason }) => report({ denied: { code, reason } }))
  websocket.on('status', ({ status }) => report({ websocket: status, synced: status === 'connected' ? current.synced : false }))
  websocket.on('sync', (synced) => report({ synced }))

  // Only editors join the WebRTC mesh: a peer applies whatever another peer sends, so a viewer
  // there could write into editors' copies. Viewers follow the server room, which drops their writes.
  if (webrtc && canEdit) {
    const signaling = wsUrlOf(signalingUrl)
    if (token) signaling.searchParams.set('token', token)
    rtc = new WebrtcProvider(topic, doc, {
      signaling: [signaling.href],
      awareness,
      maxConns: 20,
      peerOpts: { config: { iceServers } }
    })
    rtc.on('peers', () => report({}))
    rtc.on('synced', () => report({}))
    rtc.on('status', ({ connected }) => report({ signaling: connected }))
  }

  const saver = new LeaderSaver({
    Y,
    doc,
    awareness,
    canEdit: !!canEdit,
    save: postUpdate(saveUrl, docId, token ? { headers: { authorization: `Bearer ${token}` } } : {}),
    intervalMs: saveIntervalMs
  })
  saver.start()
  const onUpdate = () => { if (canEdit) report({ unsaved: true }) }
  doc.on('update', onUpdate)
  // Wrapped (not subclassed: leader.js is shared with other pages) so onStatus hears of saves.
  const savedNow = saver.saveNow.bind(saver)
  saver.saveNow = async () => {
    const ok = await savedNow()
    if (ok) report({ saves: saver.saves, unsaved: saver.dirty })
    return ok
  }
  const onAwareness = () => report({
    peers: awareness.getStates().size,
    leader: electLeader(awareness.getStates()) === doc.clientID
  })
  awareness.on('change', onAwareness)

  // The browser knows first when the network goes: stop retrying, keep editing locally, and
  // reconnect (sync step 1 both ways merges what each side missed) when it returns.
  // y-webrtc's disconnect() clears this client's awareness state and connect() does not bring it
  // back: without restoring it, a user who was offline once would stay invisible to the others.
  let presence = null
  const goOffline = () => {
    presence = awareness.getLocalState()
    websocket.disconnect()
    if (rtc) rtc.disconnect()
    report({ online: false, websocket: 'disconnected', synced: false })
  }
  const goOnline = () => {
    if (awareness.getLocalState() === null && presence !== null) awareness.setLocalState(presence)
    report({ online: true, denied: null })
    websocket.connect()
    if (rtc) rtc.connect()
  }
  window.addEventListener('offline', goOffline)
  window.addEventListener('online', goOnline)
  onAwareness()

  const destroy = () => {
    if (destroyed) return
    // Hand the unsaved state to the server before leaving, if this peer is the saver.
    if (saver.isLeader() && saver.dirty) saver.saveNow()
    destroyed = true
    window.removeEventListener('offline', goOffline)
    window.removeEventListener('online', goOnline)
    awareness.off('change', onAwareness)
    doc.off('update', onUpdate)
    saver.stop()
    if (rtc) rtc.destroy()
    websocket.destroy()
    awareness.destroy()
    if (local) local.destroy()
    doc.destroy()
  }

  return {
    doc,
    awareness,
    saver,
    user: who,
    report,
    destroy,
    status: () => ({ ...current, webrtcPeers: rtcConnected(), saves: saver.saves, unsaved: saver.dirty })
  }
}
