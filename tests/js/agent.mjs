// One real Yjs client (yjs + y-websocket, exactly what a browser runs) driven over stdin/stdout.
//
// The interop tests (tests/interop/jsclient.py) spawn one agent per client so that a client can be
// killed abruptly (SIGKILL) like a crashed browser tab. Protocol: one JSON command per line on
// stdin, `{"seq": N, "op": "...", ...args}`; one JSON reply per line on stdout,
// `{"seq": N, "ok": true, ...result}` or `{"seq": N, "ok": false, "error": "..."}`.
//
// Board model (ARCHITECTURE.md): root Y.Map `shapes` (shape id -> Y.Map of fields) and root
// Y.Map `meta`. Extra roots for convergence tests: Y.Map `kv`, Y.Array `list`, Y.Text `notes`.

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import readline from 'node:readline'

const doc = new Y.Doc()
const shapes = doc.getMap('shapes')
const meta = doc.getMap('meta')
const kv = doc.getMap('kv')
const list = doc.getArray('list')
const notes = doc.getText('notes')

/** @type {WebsocketProvider | null} */
let provider = null
const closes = [] // every WebSocket close the provider saw: {code, reason}
let remoteUpdates = 0

doc.on('update', (_update, origin) => {
  if (origin === provider) remoteUpdates++
})

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

/** Resolve when `pred()` is true; reject after `timeoutMs`. Event-driven via a short poll. */
const waitFor = (pred, timeoutMs, what) => new Promise((resolve, reject) => {
  const deadline = Date.now() + timeoutMs
  const tick = () => {
    if (pred()) return resolve()
    if (Date.now() > deadline) return reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`))
    setTimeout(tick, 5)
  }
  tick()
})

const awarenessStates = () => {
  const res = {}
  if (provider) {
    for (const [clientID, state] of provider.awareness.getStates()) res[clientID] = state
  }
  return res
}

const snapshot = () => ({
  clientID: doc.clientID,
  connected: provider ? provider.wsconnected : false,
  synced: provider ? provider.synced : false,
  shapes: shapes.toJSON(),
  meta: meta.toJSON(),
  kv: kv.toJSON(),
  list: list.toJSON(),
  notes: notes.toString(),
  stateVector: Buffer.from(Y.encodeStateVector(doc)).toString('base64'),
  remoteUpdates,
  closes
})

const ops = {
  async connect ({ url, room, params = {}, timeout = 15000, waitSynced = true, awareness = null }) {
    provider = new WebsocketProvider(url, room, doc, {
      WebSocketPolyfill: WebSocket,
      disableBc: true,
      params
    })
    provider.on('connection-close', (event) => {
      if (event) closes.push({ code: event.code, reason: String(event.reason || '') })
    })
    if (awareness !== null) provider.awareness.setLocalState(awareness)
    if (waitSynced) await waitFor(() => provider.synced, timeout, `sync with ${url}/${room}`)
    return { clientID: doc.clientID }
  },
  async disconnect () {
    provider.disconnect()
    await waitFor(() => !provider.wsconnected && provider.ws === null, 5000, 'disconnect')
    return {}
  },
  async reconnect ({ timeout = 15000 }) {
    provider.connect()
    await waitFor(() => provider.synced && provider.wsconnected, timeout, 'resync')
    return {}
  },
  async waitSynced ({ timeout = 15000 }) {
    await waitFor(() => provider.synced && provider.wsconnected, timeout, 'sync')
    return {}
  },
  async setShape ({ id, fields }) {
    doc.transact(() => {
      const shape = new Y.Map()
      shapes.set(id, shape)
      for (const [k, v] of Object.entries(fields)) shape.set(k, v)
    })
    return {}
  },
  async updateShape ({ id, fields }) {
    const shape = shapes.get(id)
    if (!shape) throw new Error(`no shape ${id}`)
    doc.transact(() => { for (const [k, v] of Object.entries(fields)) shape.set(k, v) })
    return {}
  },
  async deleteShape ({ id }) { shapes.delete(id); return {} },
  async setMeta ({ key, value }) { meta.set(key, value); return {} },
  async kvSet ({ key, value }) { kv.set(key, value); return {} },
  async listInsert ({ index, items }) { list.insert(index ?? list.length, items); return {} },
  async listDelete ({ index, length = 1 }) { list.delete(index, length); return {} },
  async textInsert ({ index, text }) { notes.insert(index ?? notes.length, text); return {} },
  async textDelete ({ index, length = 1 }) { notes.delete(index, length); return {} },
  // `count` separate transactions (one Yjs update = one WebSocket message each) on root map kv.
  async burst ({ count, prefix = 'b' }) {
    const t0 = performance.now()
    for (let i = 0; i < count; i++) kv.set(`${prefix}${i}`, i)
    return { sent: count, ms: performance.now() - t0 }
  },
  async snapshot () { return snapshot() },
  // Cheap progress probe for polling loops.
  async sizes () {
    return { shapes: shapes.size, kv: kv.size, list: list.length, notes: notes.length, remoteUpdates, synced: provider ? provider.synced : false, connected: provider ? provider.wsconnected : false, closes }
  },
  async encodeState () { return { update: Buffer.from(Y.encodeStateAsUpdate(doc)).toString('base64') } },
  async setAwareness ({ state }) { provider.awareness.setLocalState(state); return {} },
  async awareness () { return { self: doc.clientID, states: awarenessStates() } },
  async destroy () {
    if (provider) provider.destroy()
    await waitFor(() => !provider || provider.ws === null, 5000, 'destroy')
    return {}
  },
  async exit () {
    setImmediate(() => process.exit(0))
    return {}
  }
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', async (line) => {
  if (!line.trim()) return
  let cmd
  try { cmd = JSON.parse(line) } catch (e) { out({ seq: null, ok: false, error: `bad json: ${e}` }); return }
  const fn = ops[cmd.op]
  if (!fn) { out({ seq: cmd.seq, ok: false, error: `unknown op ${cmd.op}` }); return }
  try {
    out({ seq: cmd.seq, ok: true, ...(await fn(cmd)) })
  } catch (e) {
    out({ seq: cmd.seq, ok: false, error: String((e && e.stack) || e) })
  }
})
// The test process went away: do not linger (a SIGKILL'd parent leaves our stdin at EOF).
rl.on('close', () => process.exit(0))
