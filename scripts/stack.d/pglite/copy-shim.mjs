// COPY … FROM STDIN for pglite-socket, which passes the wire protocol to PGlite as is and takes
// PGlite down with it on a CopyData message (PGlite only copies from its '/dev/blob' device).
// The shim answers the copy sub-protocol itself, collects the CopyData, and runs the same COPY
// from '/dev/blob' when the client sends CopyDone. Everything else passes through unchanged.
// Test-only: this serves scripts/stack's TimescaleDB, whose clients are manifold's tests.

const COPY_FROM_STDIN = /^\s*COPY\s+(.+?)\s+FROM\s+STDIN\b(.*)$/is

function message(type, payload = Buffer.alloc(0)) {
  const head = Buffer.alloc(5)
  head.write(type, 0, 'latin1')
  head.writeInt32BE(payload.length + 4, 1)
  return Buffer.concat([head, payload])
}

const cstring = (text) => Buffer.concat([Buffer.from(text, 'utf8'), Buffer.from([0])])

function readCString(buf, at) {
  const end = buf.indexOf(0, at)
  return [buf.toString('utf8', at, end), end + 1]
}

// Splits a backend reply into messages.
function* messages(buf) {
  let at = 0
  while (at + 5 <= buf.length) {
    const len = buf.readInt32BE(at + 1)
    yield { type: String.fromCharCode(buf[at]), bytes: buf.subarray(at, at + 1 + len) }
    at += 1 + len
  }
}

function copyInResponse(target, options) {
  const binary = /FORMAT\s+binary/i.test(options)
  const list = target.match(/\(([^)]*)\)/)
  const columns = list ? list[1].split(',').length : 1
  const payload = Buffer.alloc(3 + 2 * columns)
  payload.writeInt8(binary ? 1 : 0, 0)
  payload.writeInt16BE(columns, 1)
  for (let i = 0; i < columns; i++) payload.writeInt16BE(binary ? 1 : 0, 3 + 2 * i)
  return message('G', payload)
}

export class CopyShim {
  constructor(db) {
    this.db = db
    this.buffer = Buffer.alloc(0)
    this.started = false
    this.statements = new Map() // prepared statement name → COPY FROM STDIN text
    this.copy = null // { sql, chunks, extended }
    this.readyStatus = null // ReadyForQuery status owed at the next Sync
  }

  // Returns the reply to write back for `data` (a chunk as read from the socket).
  async feed(data, passThrough) {
    if (!this.started) {
      // The startup packet (and anything before authentication) has no type byte.
      this.started = true
      return passThrough(data)
    }
    this.buffer = Buffer.concat([this.buffer, data])
    const out = []
    let pending = []
    const flush = async () => {
      if (pending.length) out.push(await passThrough(Buffer.concat(pending)))
      pending = []
    }
    while (this.buffer.length >= 5) {
      const len = this.buffer.readInt32BE(1)
      if (this.buffer.length < 1 + len) break
      const bytes = this.buffer.subarray(0, 1 + len)
      this.buffer = this.buffer.subarray(1 + len)
      const type = String.fromCharCode(bytes[0])
      const body = bytes.subarray(5)
      if (this.copy) {
        if (type === 'd') this.copy.chunks.push(Buffer.from(body))
        else if (type === 'c') out.push(await this.finish(null))
        else if (type === 'f') out.push(await this.finish(readCString(body, 0)[0] || 'COPY from stdin failed'))
        // Execute and Sync sent before the data are ignored in copy-in mode, as PostgreSQL does.
        continue
      }
      if (type === 'S' && this.readyStatus) {
        out.push(message('Z', Buffer.from(this.readyStatus, 'latin1')))
        this.readyStatus = null
        continue
      }
      if (type === 'P') {
        const [name, at] = readCString(body, 0)
        const [query] = readCString(body, at)
        if (COPY_FROM_STDIN.test(query)) this.statements.set(name, query)
        else this.statements.delete(name)
      } else if (type === 'B') {
        const [, at] = readCString(body, 0)
        const [statement] = readCString(body, at)
        const sql = this.statements.get(statement)
        if (sql) {
          await flush()
          const [, target, options] = sql.match(COPY_FROM_STDIN)
          this.copy = { sql, chunks: [], extended: true }
          out.push(message('2'), copyInResponse(target, options))
          continue
        }
      } else if (type === 'Q') {
        const [query] = readCString(body, 0)
        const match = query.match(COPY_FROM_STDIN)
        if (match) {
          await flush()
          this.copy = { sql: query, chunks: [], extended: false }
          out.push(copyInResponse(match[1], match[2]))
          continue
        }
      }
      pending.push(bytes)
    }
    await flush()
    return Buffer.concat(out)
  }

  // Runs the collected COPY (or fails it); in the extended protocol the ReadyForQuery waits for
  // the client's Sync.
  async finish(failure) {
    const { sql, chunks, extended } = this.copy
    this.copy = null
    let query
    if (failure) {
      query = `DO $copy$ BEGIN RAISE EXCEPTION 'COPY from stdin failed: %', ${quote(failure)}; END $copy$`
    } else {
      const [, target, options] = sql.match(COPY_FROM_STDIN)
      query = `COPY ${target} FROM '/dev/blob'${options.replace(/;\s*$/, '')}`
    }
    await this.db._handleBlob(new Blob(chunks))
    let reply
    try {
      reply = Buffer.from(await this.db.execProtocolRaw(message('Q', cstring(query))))
    } finally {
      await this.db._cleanupBlob()
    }
    if (!extended) return reply
    const out = []
    for (const m of messages(reply)) {
      if (m.type === 'Z') this.readyStatus = String.fromCharCode(m.bytes[5])
      else out.push(m.bytes)
    }
    return Buffer.concat(out)
  }
}

function quote(text) {
  return `'${text.replace(/'/g, "''")}'`
}
