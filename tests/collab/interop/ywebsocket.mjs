// Two unmodified y-websocket clients edit one document through townhall and must converge.
// Usage: node ywebsocket.mjs <ws://host:port/collab/ws/service> <doc id> <token>
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const [serverUrl, room, token] = process.argv.slice(2)
const timeout = setTimeout(() => { console.error('timeout'); process.exit(2) }, 20000)

const connect = () => {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(serverUrl, room, doc, { WebSocketPolyfill: WebSocket, params: { token } })
  return { doc, provider }
}
const synced = ({ provider }) => new Promise(resolve => {
  if (provider.synced) resolve()
  else provider.once('sync', (s) => s && resolve())
})
const until = (check) => new Promise(resolve => {
  const tick = () => (check() ? resolve() : setTimeout(tick, 20))
  tick()
})

const a = connect()
const b = connect()
await Promise.all([synced(a), synced(b)])
a.provider.awareness.setLocalStateField('user', { name: 'node-a' })
a.doc.getText('text').insert(0, 'from-a;')
b.doc.getText('text').insert(0, 'from-b;')
b.doc.getMap('map').set('k', 'v')
const both = (d) => d.getText('text').toString().includes('from-a;') && d.getText('text').toString().includes('from-b;') && d.getMap('map').get('k') === 'v'
await until(() => both(a.doc) && both(b.doc))
await until(() => [...b.provider.awareness.getStates().values()].some(s => s.user && s.user.name === 'node-a'))
console.log(JSON.stringify({
  a: a.doc.getText('text').toString(),
  b: b.doc.getText('text').toString(),
  state: Buffer.from(Y.encodeStateAsUpdate(a.doc)).toString('base64'),
}))
// Give the server a moment to receive everything before the sockets close.
await new Promise(resolve => setTimeout(resolve, 200))
a.provider.destroy(); b.provider.destroy()
clearTimeout(timeout)
process.exit(0)
