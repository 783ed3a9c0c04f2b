// The board's offline copy in IndexedDB, in y-indexeddb's layout (database `inkstream:<board>`,
// object store `updates`: Yjs v1 updates under auto-increment keys, plus an unused `custom`
// store), so copies written by earlier versions of the app load unchanged.
//
// Why not y-indexeddb itself: when its database opens it stores the whole document once
// (`encodeStateAsUpdate`) to catch what was applied before it was ready, and it drops updates
// that arrive before then. On a first visit the board arrives over the socket while the database
// is still opening, so that was a second full encoding of a 1.8 MB board on the way to the first
// frame. Here updates that come before the database is open are queued instead, and updates
// received from the server are stored as received (`storeUpdate`, see sync.js) — never re-encoded.
import * as Y from 'yjs'

const STORE = 'updates'
const COMPACT_AT = 500 // stored updates before they are merged into one (as y-indexeddb does)
const COMPACT_DELAY_MS = 1000

const done = (r) => new Promise((resolve, reject) => {
  r.onsuccess = () => resolve(r.result)
  r.onerror = () => reject(r.error)
})

export class LocalStore {
  /**
   * @param {string} name database name
   * @param {Y.Doc} doc
   */
  constructor (name, doc) {
    this.name = name
    this.doc = doc
    this.db = null
    this.synced = false
    this.size = 0 // updates in the store
    this._queue = [] // updates to store once the database is open
    this._handlers = new Set()
    this._compactTimer = 0
    this.whenSynced = new Promise((resolve) => this.on('synced', () => resolve(this)))
    this._onUpdate = (update, origin) => { if (origin !== this) this.storeUpdate(update) }
    doc.on('update', this._onUpdate)
    this._open().catch((err) => {
      this._queue = null
      console.warn(`offline copy of the board unavailable: ${err && err.message}`)
    })
  }

  on (event, f) { if (event === 'synced') this._handlers.add(f) }

  async _open () {
    if (typeof indexedDB === 'undefined') throw new Error('no IndexedDB')
    const req = indexedDB.open(this.name)
    req.onupgradeneeded = () => {
      const db = req.result
      if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE, { autoIncrement: true })
      if (!db.objectStoreNames.contains('custom')) db.createObjectStore('custom')
    }
    const db = await done(req)
    this.db = db
    const store = db.transaction([STORE], 'readwrite').objectStore(STORE)
    const queued = this._queue
    this._queue = null
    for (const u of queued) store.add(u)
    const updates = await done(store.getAll())
    this.size = updates.length
    if (updates.length) {
      Y.transact(this.doc, () => { for (const u of updates) Y.applyUpdate(this.doc, u) }, this, false)
    }
    this.synced = true
    for (const f of this._handlers) f(this)
    if (this.size >= COMPACT_AT) this._scheduleCompact()
  }

  /** Store one Yjs update (queued until the database is open). */
  storeUpdate (update) {
    if (this._queue) { this._queue.push(update); return }
    if (!this.db) return
    try {
      this.db.transaction([STORE], 'readwrite').objectStore(STORE).add(update)
    } catch (err) {
      console.warn(`could not store an update offline: ${err && err.message}`)
      return
    }
    if (++this.size >= COMPACT_AT) this._scheduleCompact()
  }

  _scheduleCompact () {
    clearTimeout(this._compactTimer)
    this._compactTimer = setTimeout(() => this._compact().catch(() => {}), COMPACT_DELAY_MS)
  }

  /**
   * Replace the stored updates by one: read them all (another tab may have added some — they are
   * applied to the document first), store the document's state, delete what was read.
   */
  async _compact () {
    const store = this.db.transaction([STORE], 'readwrite').objectStore(STORE)
    const [updates, keys] = await Promise.all([done(store.getAll()), done(store.getAllKeys())])
    if (!keys.length) return
    Y.transact(this.doc, () => { for (const u of updates) Y.applyUpdate(this.doc, u) }, this, false)
    store.add(Y.encodeStateAsUpdate(this.doc))
    store.delete(IDBKeyRange.upperBound(keys[keys.length - 1]))
    this.size = 1
  }
}
