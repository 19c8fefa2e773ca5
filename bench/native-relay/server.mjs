// The native relay's processes, as the edge's: a node:cluster primary and
// `workers` workers on one port; each connection a worker is handed goes,
// unread, to the C relay on that worker's loop.
//   node server.mjs <port> <upstream address> <upstream port> <workers>
import cluster from 'node:cluster'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'

const [port, upstreamHost, upstreamPort, workers] = process.argv.slice(2)
if (cluster.isPrimary) {
  for (let i = 0; i < Number(workers); i++) cluster.fork()
  let listening = 0
  cluster.on('listening', () => {
    if (++listening === Number(workers)) console.log('listening')
  })
  cluster.on('exit', (w, code) => {
    console.error(`worker ${w.process.pid} exited (${code})`)
    process.exit(1)
  })
} else {
  const relay = createRequire(import.meta.url)('./build/Release/relay.node')
  createServer({ pauseOnConnect: true }, (socket) => {
    try {
      relay.adopt(socket._handle.fd, upstreamHost, Number(upstreamPort))
    } finally {
      // The relay holds its own descriptor of the connection.
      socket.destroy()
    }
  }).listen(Number(port), '127.0.0.1')
}
