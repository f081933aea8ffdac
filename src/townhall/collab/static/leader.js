// Leader election among the peers of one Yjs document (WebRTC or WebSocket awareness).
//
// Every peer publishes `collab: {canEdit}` in its awareness state. The leader is the peer with
// the smallest client id that can edit; only it POSTs to the save API, every `intervalMs` while
// there are unsaved changes. It posts the diff since what the server acknowledged holding (the
// save response's state vector): the whole document only on its first save as leader, so a
// document larger than the save size limit is still saved. When the leader leaves (its awareness
// state is removed or times out), the next smallest takes over and saves at once if anything is
// unsaved. Two leaders for a moment are harmless: the server merges updates, never overwrites.
//
// Usage (browser or Node, no bundler needed: Yjs is passed in):
//   import * as Y from 'yjs'
//   import { LeaderSaver, postUpdate } from '/collab/static/leader.js'
//   const saver = new LeaderSaver({ Y, doc, awareness: provider.awareness, canEdit: true,
//     save: postUpdate('/api/v1/doc/save', docId) })
//   saver.start()

const toBase64 = (bytes) => {
  let s = ''
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i])
  return btoa(s)
}

const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0))

/** The client id of the leader among `states` (a Map clientID -> awareness state), or null. */
export const electLeader = (states) => {
  let leader = null
  for (const [clientID, state] of states) {
    if (state && state.collab && state.collab.canEdit && (leader === null || clientID < leader)) {
      leader = clientID
    }
  }
  return leader
}

/** A save function that POSTs the update as JSON {id, update: base64} to a save endpoint. */
export const postUpdate = (url, docId, { headers = {}, fetchFn = globalThis.fetch } = {}) =>
  async (update) => {
    const response = await fetchFn(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ id: docId, update: toBase64(update) })
    })
    if (!response.ok) throw new Error(`save failed: ${response.status}`)
    return response.json()
  }

export class LeaderSaver {
  constructor ({ Y, doc, awareness, canEdit, save, intervalMs = 5000 }) {
    this.Y = Y
    this.doc = doc
    this.awareness = awareness
    this.canEdit = canEdit
    this.save = save
    this.intervalMs = intervalMs
    this.dirty = false
    this.saving = null
    this.saves = 0
    this.timer = null
    this.serverVector = null // what the server acknowledged holding; null = unknown, send all
    this._onUpdate = () => { this.dirty = true }
    this._onAwareness = () => this._check()
  }

  get clientID () { return this.doc.clientID }

  isLeader () { return electLeader(this.awareness.getStates()) === this.clientID }

  start () {
    const prev = this.awareness.getLocalState() || {}
    this.awareness.setLocalStateField('collab', { ...(prev.collab || {}), canEdit: !!this.canEdit })
    this.doc.on('update', this._onUpdate)
    this.awareness.on('change', this._onAwareness)
    this.timer = setInterval(() => { if (this.isLeader()) this.saveNow() }, this.intervalMs)
    this._wasLeader = this.isLeader()
  }

  stop () {
    clearInterval(this.timer)
    this.doc.off('update', this._onUpdate)
    this.awareness.off('change', this._onAwareness)
  }

  _check () {
    // A follower whose state the leader has saved has nothing unsaved.
    const leader = electLeader(this.awareness.getStates())
    if (leader !== null && leader !== this.clientID) {
      const state = this.awareness.getStates().get(leader)
      const saved = state && state.collab && state.collab.saved
      if (saved && toBase64(this.Y.encodeStateVector(this.doc)) === saved) this.dirty = false
    }
    const isLeader = leader === this.clientID
    if (isLeader && !this._wasLeader) {
      this.serverVector = null // the previous leader's saves are not ours to know: send all once
      if (this.dirty) this.saveNow() // take over at once
    }
    this._wasLeader = isLeader
  }

  /** The state vector holding both (per client, the larger clock). */
  _union (a, b) {
    const clocks = this.Y.decodeStateVector(a)
    for (const [client, clock] of this.Y.decodeStateVector(b)) {
      if (!(clocks.get(client) >= clock)) clocks.set(client, clock)
    }
    return this.Y.encodeStateVector(clocks)
  }

  /** Save what the server lacks if there are unsaved changes; one save at a time. */
  async saveNow () {
    if (!this.dirty || !this.canEdit) return false
    if (this.saving) return this.saving
    this.saving = (async () => {
      const vector = this.Y.encodeStateVector(this.doc)
      const base = this.serverVector
      this.dirty = false
      try {
        const update = base ? this.Y.encodeStateAsUpdate(this.doc, base) : this.Y.encodeStateAsUpdate(this.doc)
        const answer = await this.save(update)
        // The server now holds at least what we sent and what it says it holds.
        const held = answer && typeof answer.state_vector === 'string' ? fromBase64(answer.state_vector) : null
        this.serverVector = held ? this._union(vector, held) : vector
        this.saves++
        const prev = this.awareness.getLocalState() || {}
        this.awareness.setLocalStateField('collab', { ...(prev.collab || {}), saved: toBase64(vector) })
        return true
      } catch (err) {
        this.dirty = true // retried on the next tick
        return false
      } finally {
        this.saving = null
      }
    })()
    return this.saving
  }
}
