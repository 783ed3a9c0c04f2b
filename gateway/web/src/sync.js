// Cheaper application of what the server sends.
//
// Yjs re-encodes every transaction as an update message whenever anything listens to the doc's
// 'update' event. Here the listeners are y-websocket (which ignores updates that came from the
// server) and y-indexeddb (which stores them). Re-encoding a remote transaction therefore only
// produces bytes we already hold: the payload of the sync message itself. For the first sync of
// a large board (1.8 MB for 5,000 shapes) that re-encoding was ~40 % of applying it.
//
// quietRemoteUpdates() peeks at each sync message from the server (sync step 2 or update), hides
// the 'update' listeners for exactly the transaction that message causes (origin = provider), and
// hands the received bytes to `onRemote` instead, which stores them in IndexedDB verbatim.
// Applying an update twice changes nothing, so storing the received bytes (rather than the
// effective delta) is as good for the offline copy. Local transactions — including any that
// observers start while a remote update is applied — still emit 'update' normally.

import { applyUpdate } from 'yjs'

const MESSAGE_SYNC = 0
const SYNC_STEP_2 = 1
const SYNC_UPDATE = 2

function readVarUint (arr, pos) {
  let num = 0; let mult = 1
  for (;;) {
    if (pos.i >= arr.length) throw new Error('unexpected end of message')
    const r = arr[pos.i++]
    num += (r & 127) * mult
    if (r < 128) return num
    mult *= 128
  }
}

/** The update carried by a sync message (decoder positioned after the message type), or null. */
function peekUpdate (decoder) {
  try {
    const arr = decoder.arr
    const pos = { i: decoder.pos }
    const type = readVarUint(arr, pos)
    if (type !== SYNC_STEP_2 && type !== SYNC_UPDATE) return null
    const len = readVarUint(arr, pos)
    if (pos.i + len > arr.length) return null
    return arr.subarray(pos.i, pos.i + len)
  } catch {
    return null
  }
}

/**
 * @param {import('yjs').Doc} doc
 * @param {import('y-websocket').WebsocketProvider} provider
 * @param {(update: Uint8Array) => void} onRemote called once per remote transaction, with the bytes received
 * @param {(origin: any) => boolean} [alsoQuiet] other transactions nobody needs re-encoded (by origin),
 *   e.g. loading the IndexedDB copy while the socket is closed
 * @returns {null | ((update: Uint8Array, origin: any) => void)} null when the library internals
 *   differ (nothing was changed); else `applyQuietly(update, origin)`, which applies bytes that came
 *   from the server some other way (the HTTP state) with the same treatment: no 'update' event, so
 *   y-websocket does not send them back, and `onRemote` gets them.
 */
export function quietRemoteUpdates (doc, provider, onRemote, alsoQuiet = () => false) {
  const handlers = provider.messageHandlers
  const observers = doc._observers
  if (!Array.isArray(handlers) || typeof handlers[MESSAGE_SYNC] !== 'function' || !(observers instanceof Map)) return null
  const original = handlers[MESSAGE_SYNC]
  let received = null // bytes being applied, and the origin of their transaction
  let receivedOrigin = null
  handlers[MESSAGE_SYNC] = (encoder, decoder, prov, emitSynced, type) => {
    received = peekUpdate(decoder)
    receivedOrigin = provider
    if (received && !performance.getEntriesByName('inkstream:sync-received').length) performance.mark('inkstream:sync-received')
    try {
      return original(encoder, decoder, prov, emitSynced, type)
    } finally {
      received = null
    }
  }
  let hidden = null
  const restore = () => {
    if (!hidden) return
    const now = observers.get('update')
    if (now) for (const f of hidden) now.add(f) // someone subscribed meanwhile: keep both
    else observers.set('update', hidden)
    hidden = null
  }
  doc.on('afterTransactionCleanup', (tr) => {
    restore()
    if (received && tr.origin === receivedOrigin && observers.has('update')) {
      const bytes = received
      received = null // one transaction per message
      hidden = observers.get('update')
      observers.delete('update')
      onRemote(bytes)
    } else if (observers.has('update') && alsoQuiet(tr.origin)) {
      hidden = observers.get('update')
      observers.delete('update')
    }
  })
  doc.on('afterAllTransactions', restore)
  doc.on('beforeTransaction', restore)
  return (update, origin) => {
    received = update
    receivedOrigin = origin
    try {
      applyUpdate(doc, update, origin)
    } finally {
      received = null
    }
  }
}

/**
 * A WebSocket class for y-websocket's `WebSocketPolyfill`: the first socket it is asked for is
 * the one index.html opened while the app loaded (`early`: {ws, messages, closed}), every later
 * one (reconnects) a new WebSocket. The early socket sent sync step 1 with an empty state vector,
 * so the server's answer — the whole board — is usually there already or on its way.
 *
 * Hand-over, one task after y-websocket attached its handlers: first the messages that arrived
 * (so the state vector y-websocket sends on open already covers the board and the server's
 * answer to it is small), then `open`, then live messages. If the early socket has closed, or
 * closes before the hand-over, y-websocket sees a closed connection and reconnects as usual.
 */
export function earlySocketClass (early) {
  let taken = !early || early.closed
  return class extends WebSocket {
    constructor (url, protocols) {
      if (taken) { super(url, protocols); return }
      taken = true
      // eslint-disable-next-line no-constructor-return
      return adopt(early)
    }
  }
}

function adopt (early) {
  const ws = early.ws
  let live = false // handed over to y-websocket
  const w = {
    early: true,
    binaryType: 'arraybuffer',
    onopen: null,
    onmessage: null,
    onclose: null,
    onerror: null,
    CONNECTING: 0,
    OPEN: 1,
    CLOSING: 2,
    CLOSED: 3,
    get readyState () { return live || ws.readyState !== 1 ? ws.readyState : 0 },
    send: (data) => ws.send(data),
    close: (code, reason) => ws.close(code, reason)
  }
  const handOver = () => {
    if (live || ws.readyState !== 1) return
    live = true
    const pending = early.messages || []
    early.messages = null
    for (const data of pending) if (w.onmessage) w.onmessage({ data })
    if (w.onopen) w.onopen({})
  }
  ws.addEventListener('message', (e) => { if (live && w.onmessage) w.onmessage(e) })
  ws.addEventListener('open', () => setTimeout(handOver, 0))
  ws.addEventListener('error', (e) => { if (w.onerror) w.onerror(e) })
  ws.addEventListener('close', (e) => {
    early.messages = null
    if (w.onclose) w.onclose(e)
  })
  if (ws.readyState >= 2) setTimeout(() => { if (w.onclose) w.onclose(new CloseEvent('close', { code: 1006 })) }, 0)
  else setTimeout(handOver, 0)
  return w
}
