// Client load for bench/collab.py: N documents x M clients, each sending small updates.
// Usage: node bench-load.mjs <townhall|hocuspocus> <ws url> <token> <docs> <clients> <updates> <interval ms>
// Each update sets map[`${client}:${seq}`] = Date.now(); every other client of the document
// records the delivery latency when it sees the key. Prints one JSON line of results.
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider'

const [kind, url, token, nDocs, nClients, nUpdates, intervalMs] = process.argv.slice(2)
const docs = Number(nDocs); const clients = Number(nClients); const updates = Number(nUpdates)
const latencies = []
let delivered = 0
const runId = Math.random().toString(36).slice(2, 8)

const connect = (room) => {
  const doc = new Y.Doc()
  let provider
  if (kind === 'townhall') {
    provider = new WebsocketProvider(url, room, doc, { WebSocketPolyfill: WebSocket, params: { token } })
  } else {
    const socket = new HocuspocusProviderWebsocket({ url, WebSocketPolyfill: WebSocket })
    provider = new HocuspocusProvider({ websocketProvider: socket, name: room, document: doc, token })
    provider.attach?.()
  }
  const map = doc.getMap('bench')
  map.observe((event, tx) => {
    if (tx.local) return
    const now = Date.now()
    for (const key of event.keysChanged) {
      const sent = map.get(key)
      if (typeof sent === 'number') { latencies.push(now - sent); delivered++ }
    }
  })
  const synced = new Promise(resolve => {
    const check = () => (provider.synced || provider.isSynced) ? resolve() : setTimeout(check, 20)
    check()
  })
  return { doc, map, provider, synced }
}

const peers = []
for (let d = 0; d < docs; d++) for (let c = 0; c < clients; c++) peers.push({ d, c, ...connect(`bench-${runId}-${d}`) })
await Promise.all(peers.map(p => p.synced))
const started = Date.now()
await Promise.all(peers.map(async (p) => {
  for (let i = 0; i < updates; i++) {
    p.map.set(`${p.c}:${i}`, Date.now())
    await new Promise(resolve => setTimeout(resolve, Number(intervalMs)))
  }
}))
const expected = docs * clients * (clients - 1) * updates
const deadline = Date.now() + 20000
while (delivered < expected && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
const elapsed = (Date.now() - started) / 1000
latencies.sort((a, b) => a - b)
const pct = (q) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : null
console.log(JSON.stringify({ kind, expected, delivered, seconds: elapsed, per_second: delivered / elapsed, p50_ms: pct(0.5), p99_ms: pct(0.99) }))
for (const p of peers) p.provider.destroy()
process.exit(0)
