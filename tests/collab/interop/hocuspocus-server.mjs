// @hocuspocus/server with default settings, for bench/collab.py. Usage: node hocuspocus-server.mjs <port>
import { Server } from '@hocuspocus/server'
const server = new Server({ port: Number(process.argv[2]), quiet: true })
await server.listen()
console.log('ready')
