// One unmodified y-webrtc provider against townhall's signaling relay. Browsers are never used:
// a stub RTCPeerConnection lets simple-peer produce offers so the signaling handshake runs.
// Usage: node ywebrtc.mjs <ws://host:port/collab/signaling?token=...> <topic> <seconds>
// Prints one JSON line per event: {"event":"peer","remote":id} when a WebRTC peer is created
// for a remote announce/signal, {"event":"signal",...} for each relayed signal message.
import WebSocket from 'ws'
globalThis.WebSocket = WebSocket
const { WebrtcProvider } = await import('y-webrtc')
const Y = await import('yjs')

const [url, topic, seconds] = process.argv.slice(2)
const log = (o) => console.log(JSON.stringify(o))

class FakeChannel { constructor () { this.readyState = 'connecting' } close () {} send () {} }
class FakePC {
  constructor () { this.signalingState = 'stable'; this.iceConnectionState = 'new'; this.iceGatheringState = 'complete'; this.connectionState = 'new'; this.localDescription = null; this.remoteDescription = null }
  createDataChannel () { return new FakeChannel() }
  async createOffer () { return { type: 'offer', sdp: 'v=0 fake-offer' } }
  async createAnswer () { return { type: 'answer', sdp: 'v=0 fake-answer' } }
  async setLocalDescription (d) { this.localDescription = d }
  async setRemoteDescription (d) { this.remoteDescription = d }
  async addIceCandidate () {}
  getTransceivers () { return [] }
  async getStats () { return new Map() }
  close () {}
}
const wrtc = { RTCPeerConnection: FakePC, RTCSessionDescription: Object, RTCIceCandidate: Object }

const doc = new Y.Doc()
const provider = new WebrtcProvider(topic, doc, { signaling: [url], peerOpts: { wrtc }, filterBcConns: false })
provider.on('peers', (e) => { for (const id of e.added) log({ event: 'peer', remote: id }) })
for (const conn of provider.signalingConns) {
  conn.on('message', (m) => {
    if (m.type === 'publish' && m.data && m.data.type === 'signal') log({ event: 'signal', kind: m.data.signal.type, from: m.data.from, to: m.data.to, clients: m.clients })
    if (m.type === 'publish' && m.data && m.data.type === 'announce') log({ event: 'announce', from: m.data.from, clients: m.clients })
  })
}
while (!provider.room) await new Promise(resolve => setTimeout(resolve, 10))
log({ event: 'start', self: provider.room.peerId })
setTimeout(() => { provider.destroy(); process.exit(0) }, Number(seconds) * 1000)
