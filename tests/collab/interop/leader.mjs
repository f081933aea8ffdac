// Leader election of src/townhall/collab/static/leader.js with real yjs + y-protocols awareness.
// Peers 1 (viewer), 2 and 3 (editors): 2 leads and saves; when 2 leaves, 3 takes over.
import * as Y from 'yjs'
import { Awareness, encodeAwarenessUpdate, applyAwarenessUpdate, removeAwarenessStates } from 'y-protocols/awareness'
import { LeaderSaver, electLeader } from '../../../src/townhall/collab/static/leader.js'

const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))
// The server's copy: saves merge into it; the answer carries its state vector (the save API's).
const server = new Y.Doc()
const toB64 = (bytes) => Buffer.from(bytes).toString('base64')
const serve = (update) => {
  Y.applyUpdate(server, update)
  return { state_vector: toB64(Y.encodeStateVector(server)) }
}
const peers = [1, 2, 3].map(id => {
  const doc = new Y.Doc()
  doc.clientID = id
  const awareness = new Awareness(doc)
  const saved = []
  const saver = new LeaderSaver({ Y, doc, awareness, canEdit: id !== 1, intervalMs: 50, save: async (u) => { saved.push(u.length); return serve(u) } })
  return { id, doc, awareness, saver, saved, online: true }
})
// Wire every peer to every other (what WebRTC does): doc updates and awareness updates.
for (const p of peers) {
  p.doc.on('update', (u, origin) => { if (origin !== 'net') for (const q of peers) if (q !== p && q.online && p.online) Y.applyUpdate(q.doc, u, 'net') })
  p.awareness.on('update', ({ added, updated, removed }, origin) => {
    if (origin === 'net' || !p.online) return
    const update = encodeAwarenessUpdate(p.awareness, added.concat(updated, removed))
    for (const q of peers) if (q !== p && q.online) applyAwarenessUpdate(q.awareness, update, 'net')
  })
}
for (const p of peers) p.saver.start()
await sleep(50)
const leaders1 = peers.map(p => electLeader(p.awareness.getStates()))
peers[2].doc.getText('t').insert(0, 'hello')
await sleep(300)
const saves1 = peers.map(p => p.saved.length)
// Peer 2 leaves: its awareness state is removed everywhere, then peer 3 edits.
peers[1].saver.stop()
peers[1].online = false
for (const q of peers) if (q !== peers[1]) removeAwarenessStates(q.awareness, [2], 'net')
peers[0].doc.getText('t').insert(0, 'x') // even a viewer's change must reach a saver
await sleep(300)
const leaders2 = peers.filter(p => p.online).map(p => electLeader(p.awareness.getStates()))
const saves2 = peers.map(p => p.saved.length)
await sleep(200)
const saves3 = peers.map(p => p.saved.length)
// The leader saves diffs since the server's state vector, not the whole (now large) document.
peers[2].doc.getText('t').insert(0, 'L'.repeat(20000))
await sleep(300)
peers[2].doc.getText('t').insert(0, 'z')
await sleep(300)
const leaderSaves = peers[2].saved
const result = {
  leaders1,
  saves1,
  leaders2,
  saves2,
  saves3,
  docBytes: Y.encodeStateAsUpdate(peers[2].doc).length,
  lastSaveBytes: leaderSaves[leaderSaves.length - 1],
  leaderSaves: leaderSaves.length,
  serverMatches: server.getText('t').toString() === peers[2].doc.getText('t').toString()
}
console.log(JSON.stringify(result))
for (const p of peers) p.saver.stop()
process.exit(0)
