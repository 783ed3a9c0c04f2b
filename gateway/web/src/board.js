// The board page: a canvas whiteboard synced through Yjs (y-websocket to the
// Inkstream gateway, an IndexedDB copy for offline), with presence and undo.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import {
  LOCAL, LINE_HEIGHT, STICKY_PAD, POINT_TYPES, TEXT_TYPES, getRoots, readShape, finishShape,
  insertShape, newShapeFields, compareZ, keyBetween, keysBetween, randomId, round, shapeBox,
  snapshotShapes, FIELDS
} from './model.js'
import { drawShape, drawGrid, fontString, measureText, renderToCanvas, unionBounds, isClosed } from './render.js'
import { importExcalidraw, exportExcalidraw, importSummary, roundCoord } from './excalidraw.js'
import { exportSvg } from './svg.js'
import { icon, LOGO } from './icons.js'
import { h, toast, keepToast, promptDialog, download } from './ui.js'
import { storedName, suggestName, setName, userColor, initials } from './user.js'
import { createHistory, describeSummary } from './history.js'
import { rememberBoard } from './boards.js'
import { quietRemoteUpdates, earlySocketClass } from './sync.js'
import { LocalStore } from './localstore.js'

const TOOLS = [
  { id: 'select', label: 'Select', key: 'V' },
  { id: 'pen', label: 'Pen', key: 'P' },
  { id: 'rect', label: 'Rectangle', key: 'R' },
  { id: 'ellipse', label: 'Ellipse', key: 'O' },
  { id: 'line', label: 'Line', key: 'L' },
  { id: 'arrow', label: 'Arrow', key: 'A' },
  { id: 'text', label: 'Text', key: 'T' },
  { id: 'sticky', label: 'Sticky note', key: 'S' },
  { id: 'eraser', label: 'Eraser', key: 'E' }
]

const STROKES = [
  ['#1e1e2e', 'Ink'], ['#868e96', 'Grey'], ['#e03131', 'Red'], ['#f08c00', 'Orange'],
  ['#2f9e44', 'Green'], ['#0c8599', 'Teal'], ['#1971c2', 'Blue'], ['#9c36b5', 'Purple']
]
const FILLS = [
  ['transparent', 'None'], ['#ffffff', 'White'], ['#ffc9c9', 'Pink'], ['#ffec99', 'Yellow'],
  ['#b2f2bb', 'Mint'], ['#a5d8ff', 'Sky'], ['#eebefa', 'Lilac'], ['#e9ecef', 'Fog']
]
const WIDTHS = [[2, 'Thin'], [4, 'Medium'], [8, 'Bold']]
const FONTS = [[16, 'S'], [24, 'M'], [36, 'L'], [56, 'XL']]

const FLUSH_MS = 50 // max one Yjs update per 50 ms per gesture (coalescing)
const CURSOR_MS = 50
const MIN_ZOOM = 0.02
const MAX_ZOOM = 8
const HANDLE = 8

const FILLABLE = new Set(['rect', 'ellipse', 'sticky', 'line'])

export function mountBoard (root, boardId) {
  // ---------------------------------------------------------------- document
  const doc = new Y.Doc()
  const { shapes: shapesY, meta: metaY } = getRoots(doc)
  const undo = new Y.UndoManager([shapesY, metaY], { trackedOrigins: new Set([LOCAL]), captureTimeout: 400 })

  let userName = storedName() || suggestName()
  const color = userColor()

  const cache = new Map() // id -> plain shape (Y state + unflushed local edits)
  let sorted = []
  let sortedDirty = true
  const pending = new Map() // id -> fields not yet written to Yjs
  let flushTimer = 0
  let lastFlush = 0

  const selection = new Set()
  let tool = 'pen'
  const style = { stroke: '#1e1e2e', fill: 'transparent', width: 2, font: 24, opacity: 1 }
  let cam = loadCam() || { x: -innerWidth / 2, y: -innerHeight / 2, zoom: 1 }
  let camFromStorage = !!loadCam()
  let gesture = null
  let spaceDown = false
  let editing = null // { id, ta, isNew, pos }
  const erasing = new Set()
  let hoverId = null
  let preview = null // { version, sorted, info } while a past version is shown read-only
  let layoutQueued = false // a top bar layout is due (see layoutTopbar)

  // ---------------------------------------------------------------- DOM
  const canvas = h('canvas', { class: 'board-canvas', 'data-testid': 'board-canvas', tabindex: '0', 'aria-label': 'Whiteboard canvas' })
  const cursorsLayer = h('div', { class: 'cursors', 'aria-hidden': 'true' })
  const editorLayer = h('div', { class: 'editor-layer' })
  const titleInput = h('input', { class: 'title-input', 'aria-label': 'Board title', placeholder: 'Untitled board', maxlength: '120', 'data-testid': 'board-title', spellcheck: 'false' })
  const titleHint = h('div', { class: 'title-hint', 'data-testid': 'title-hint', hidden: true, 'aria-hidden': 'true' }, h('kbd', {}, 'Enter'), ' to save · ', h('kbd', {}, 'Esc'), ' to cancel')
  const fileInput = h('input', { type: 'file', accept: '.excalidraw,.json,application/json', style: { display: 'none' }, 'data-testid': 'import-input' })
  const menu = h('div', { class: 'menu', role: 'menu', hidden: true })
  const menuBtn = h('button', { class: 'icon-btn', 'aria-label': 'Main menu', 'aria-haspopup': 'menu', title: 'Menu', 'data-testid': 'menu-button', html: icon('menu') })
  const toolbar = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Tools' })
  const toolButtons = new Map()
  for (const t of TOOLS) {
    const b = h('button', {
      class: 'tool-btn',
      'aria-label': `${t.label} (${t.key})`,
      'aria-pressed': 'false',
      'data-tool': t.id,
      'data-testid': `tool-${t.id}`,
      'data-tip': `${t.label} — ${t.key}`,
      html: icon(t.id) + `<span class="kbd">${t.key}</span>`,
      onclick: () => setTool(t.id)
    })
    toolButtons.set(t.id, b)
    toolbar.append(b)
  }
  const stylePanel = h('div', { class: 'style-panel collapsed', 'aria-label': 'Style', role: 'region', id: 'style-panel-' + boardId.replace(/[^\w-]/g, '_') })
  // Small screens: the style panel folds behind this button (CSS shows it only there).
  let styleOpen = false
  const styleToggle = h('button', { class: 'style-toggle', 'aria-label': 'Style', 'aria-expanded': 'false', 'aria-controls': stylePanel.id, 'data-testid': 'style-toggle', hidden: true, onclick: () => setStyleOpen(!styleOpen) },
    h('span', { class: 'style-toggle-dot' }))
  function setStyleOpen (open) {
    styleOpen = open
    stylePanel.classList.toggle('collapsed', !open)
    styleToggle.setAttribute('aria-expanded', String(open))
    styleToggle.classList.toggle('active', open)
  }
  const presence = h('div', { class: 'presence', 'data-testid': 'presence-list', role: 'group', 'aria-label': 'People on this board' })
  const peopleMenu = h('div', { class: 'menu people-menu', role: 'menu', 'aria-label': 'Everyone on this board', 'data-testid': 'people-menu', hidden: true })
  const status = h('div', { class: 'status', 'data-testid': 'connection-status', 'data-state': 'connecting', role: 'status', 'aria-live': 'polite' })
  const zoomLabel = h('button', { class: 'zoom-label', 'aria-label': 'Reset zoom to 100%', 'data-tip': 'Reset zoom — Ctrl+0', 'data-testid': 'zoom-reset', onclick: () => zoomTo(1) }, '100%')
  const undoBtn = h('button', { class: 'icon-btn', 'aria-label': 'Undo (Ctrl+Z)', 'data-tip': 'Undo — Ctrl+Z', 'data-testid': 'undo', html: icon('undo'), onclick: () => doUndo() })
  const redoBtn = h('button', { class: 'icon-btn', 'aria-label': 'Redo (Ctrl+Shift+Z)', 'data-tip': 'Redo — Ctrl+Shift+Z', 'data-testid': 'redo', html: icon('redo'), onclick: () => doRedo() })
  const historyBtn = h('button', { class: 'icon-btn', 'aria-label': 'Version history (H)', 'aria-pressed': 'false', 'data-tip': 'Version history — H', 'data-testid': 'history-button', html: icon('history'), onclick: () => hist.toggle() })
  const bannerText = h('span', { class: 'banner-text', 'data-testid': 'preview-banner-text' })
  const bannerSub = h('span', { class: 'banner-sub' })
  const previewBanner = h('div', { class: 'preview-banner', role: 'status', 'aria-live': 'polite', 'data-testid': 'preview-banner', hidden: true },
    h('span', { class: 'banner-icon', html: icon('eye', 18) }),
    h('span', { class: 'banner-body' }, bannerText, bannerSub),
    h('button', { class: 'btn btn-sm', 'data-testid': 'back-to-live', onclick: () => hist.goLive() }, 'Back to live'))
  const emptyHint = h('div', { class: 'empty-hint', hidden: true },
    h('div', { class: 'empty-title' }, 'This board is empty'),
    h('div', { class: 'empty-sub' }, 'Draw with the pen, pick a shape from the toolbar, or drop an .excalidraw file here.'))
  const dropOverlay = h('div', { class: 'drop-overlay', hidden: true }, h('div', { class: 'drop-card' }, h('span', { html: icon('upload', 28) }), 'Drop an .excalidraw file to import it'))

  const hist = createHistory(boardId, {
    getUser: () => userName,
    colorFor: (name) => {
      // the colour people on the board use now, if the author is here
      if (name === userName) return color
      for (const st of awareness.getStates().values()) if (st && st.user && st.user.name === name) return st.user.color
      return null
    },
    flush: () => flush(),
    enterPreview: (v, shapes, info) => enterPreview(v, shapes, info),
    exitPreview: () => exitPreview(),
    navigate: (url) => { location.href = url },
    onToggle: (open) => {
      historyBtn.setAttribute('aria-pressed', String(open))
      historyBtn.classList.toggle('active', open)
      boardEl.classList.toggle('history-open', open)
    }
  })

  const menuItems = [
    ['upload', 'Import .excalidraw…', 'menu-import', () => fileInput.click()],
    null,
    ['image', 'Export as PNG', 'export-png', () => exportPng()],
    ['file', 'Export as SVG', 'export-svg', () => exportSvgFile()],
    ['download', 'Export as .excalidraw', 'export-excalidraw', () => exportExcalidrawFile()],
    null,
    ['history', 'Version history', 'menu-history', () => hist.open()],
    null,
    ['link', 'Copy link to board', 'copy-link', () => copyLink()],
    ['user', 'Change your name…', 'change-name', () => askName(true)],
    ['grid', 'All boards', 'all-boards', () => { location.href = '/' }]
  ]
  for (const it of menuItems) {
    if (!it) { menu.append(h('div', { class: 'menu-sep', role: 'separator' })); continue }
    menu.append(h('button', { class: 'menu-item', role: 'menuitem', 'data-testid': it[2], html: icon(it[0], 18) + `<span>${it[1]}</span>`, onclick: () => { closeMenu(); it[3]() } }))
  }

  const titleCard = h('div', { class: 'card title-card' },
    h('a', { class: 'logo-link', href: '/', 'aria-label': 'All boards', 'data-tip': 'All boards', html: LOGO }),
    titleInput,
    h('div', { class: 'menu-wrap' }, menuBtn, menu), titleHint)
  const rightCard = h('div', { class: 'card right-card' },
    h('div', { class: 'presence-wrap' }, presence, peopleMenu), status, historyBtn,
    h('button', { class: 'btn btn-primary btn-share', 'data-testid': 'share', 'aria-label': 'Share — copy the link to this board', 'data-tip': 'Copy link to this board', onclick: () => copyLink(), html: icon('link', 16) + '<span>Share</span>' }))
  const topbar = h('header', { class: 'topbar', 'data-testid': 'topbar' }, titleCard, toolbar, previewBanner, rightCard)
  const boardEl = h('div', { class: 'board' },
      canvas, cursorsLayer, editorLayer,
      topbar,
      stylePanel, styleToggle,
      h('div', { class: 'card zoom-card' },
        h('button', { class: 'icon-btn', 'aria-label': 'Zoom out', 'data-tip': 'Zoom out — Ctrl+−', 'data-testid': 'zoom-out', html: icon('minus'), onclick: () => zoomBy(1 / 1.25) }),
        zoomLabel,
        h('button', { class: 'icon-btn', 'aria-label': 'Zoom in', 'data-tip': 'Zoom in — Ctrl+=', 'data-testid': 'zoom-in', html: icon('plus'), onclick: () => zoomBy(1.25) }),
        h('button', { class: 'icon-btn', 'aria-label': 'Zoom to fit', 'data-tip': 'Zoom to fit — Shift+1', 'data-testid': 'zoom-fit', html: icon('fit'), onclick: () => zoomToFit() })),
      h('div', { class: 'card undo-card' }, undoBtn, redoBtn),
      hist.panel,
      emptyHint, dropOverlay, fileInput
  )
  root.replaceChildren(boardEl)
  const ctx = canvas.getContext('2d')

  // ---------------------------------------------------------------- sync
  const idb = new LocalStore(`inkstream:${boardId}`, doc)
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
  // The socket index.html opened early, if it is for this board and user (see sync.js).
  const pathSeg = (/^\/b\/([^/]+)/.exec(location.pathname) || [])[1] || ''
  let early = window.__inkstreamEarly
  window.__inkstreamEarly = null
  if (early && (early.path !== pathSeg || early.user !== userName || navigator.onLine === false)) {
    try { early.ws.close() } catch {}
    early = null
  }
  const provider = new WebsocketProvider(`${proto}//${location.host}/ws`, boardId, doc, {
    params: { user: userName },
    connect: navigator.onLine !== false,
    maxBackoffTime: 5000,
    WebSocketPolyfill: earlySocketClass(early)
  })
  // What the server sends is stored offline as received, not re-encoded (see sync.js).
  quietRemoteUpdates(doc, provider, (update) => { idb.storeUpdate(update); hist.changed() },
    // the offline copy, loaded while the socket is closed: the sync handshake will carry it
    (origin) => origin === idb && !provider.wsconnected)
  const awareness = provider.awareness
  awareness.setLocalState({ user: { name: userName, color }, cursor: null, selection: [] })

  let everConnected = false
  let netState = navigator.onLine === false ? 'offline' : 'connecting'
  let synced = false
  let quietReconnectUntil = 0 // a deliberate reconnect (new name) is not shown as a lost connection
  provider.on('status', ({ status: s }) => {
    if (s !== 'connected' && everConnected && performance.now() < quietReconnectUntil) return
    if (s === 'connected') { if (!everConnected) performance.mark('inkstream:ws-connected'); everConnected = true; netState = 'connected' } else if (!navigator.onLine) netState = 'offline'
    else netState = everConnected ? 'reconnecting' : 'connecting'
    renderStatus()
  })
  provider.on('sync', (isSynced) => {
    synced = isSynced
    document.body.dataset.synced = String(isSynced)
    if (isSynced && !performance.getEntriesByName('inkstream:synced').length) performance.mark('inkstream:synced')
    if (isSynced) onFirstContent()
    renderStatus()
  })
  idb.on('synced', () => { performance.mark('inkstream:local-loaded'); document.body.dataset.localLoaded = 'true'; onFirstContent() })
  addEventListener('offline', () => { provider.disconnect(); netState = 'offline'; renderStatus() })
  addEventListener('online', () => { netState = everConnected ? 'reconnecting' : 'connecting'; provider.connect(); renderStatus() })

  function renderStatus () {
    const labels = { connected: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', offline: 'Offline' }
    const tips = {
      connected: 'Connected — changes sync live',
      connecting: 'Connecting to the server…',
      reconnecting: 'Connection lost — edits are kept on this device and will sync when it is back',
      offline: 'You are offline — edits are saved on this device and will sync when you reconnect'
    }
    status.dataset.state = netState
    status.setAttribute('data-tip', tips[netState])
    status.innerHTML = `<span class="dot"></span><span class="status-label">${labels[netState]}</span>`
    requestLayout()
  }
  renderStatus()

  let remembered = false
  function rememberOnce () {
    if (remembered) return
    remembered = true
    rememberBoard(boardId)
  }
  let firstContentDone = false
  function onFirstContent () {
    if (cache.size || metaY.get('title')) rememberOnce()
    if (cache.size && idb.synced) {
      // this browser keeps the board offline now: next visits ask for the board with its state vector, not early (index.html)
      try { localStorage.setItem('inkstream:local:' + pathSeg, '1') } catch {}
    }
    if (firstContentDone) return
    if (cache.size === 0 && !synced) return
    firstContentDone = true
    if (!camFromStorage && cache.size > 0) {
      zoomToFit(false)
      camMovingUntil = 0 // placing the camera is not a gesture: draw crisply, no scene cache
    }
    requestRender()
  }

  // ---------------------------------------------------------------- model cache
  let contentVersion = 0 // bumped by changes the scene cache cannot patch (preview, text editing, erasing)
  const gestureEditsContent = () => !!gesture && gesture.kind !== 'pan' && gesture.kind !== 'marquee'
  function refresh (id) {
    const m = shapesY.get(id)
    if (!(m instanceof Y.Map)) { remove(id); return }
    const prev = cache.get(id)
    const s = readShape(id, m)
    const p = pending.get(id)
    if (p) { Object.assign(s, p); finishShape(s) }
    damage(s.bbox)
    if (!prev) { cache.set(id, s); sortedDirty = true; return }
    damage(prev.bbox)
    // update in place: `sorted` holds these objects
    if (prev.z !== s.z) sortedDirty = true
    Object.assign(prev, s)
  }
  function remove (id) {
    const s = cache.get(id)
    if (s) damage(s.bbox)
    if (cache.delete(id)) sortedDirty = true
    pending.delete(id)
    selection.delete(id)
  }
  shapesY.observeDeep((events) => {
    const t0 = performance.now()
    const touched = new Set()
    for (const ev of events) {
      if (ev.target === shapesY) {
        ev.changes.keys.forEach((change, key) => {
          if (change.action === 'delete') remove(key)
          else touched.add(key)
        })
      } else if (ev.path.length) touched.add(ev.path[0])
    }
    for (const id of touched) refresh(id)
    stats.observeMs = (stats.observeMs || 0) + performance.now() - t0
    if (editing && !cache.has(editing.id) && !editing.isNew) endEditing(false)
    updateSelectionUi()
    requestRender()
  })
  metaY.observe(() => renderTitle())

  function getSorted () {
    if (preview) return preview.sorted
    if (sortedDirty) {
      sorted = Array.from(cache.values()).sort(compareZ)
      sortedDirty = false
    }
    return sorted
  }
  function topZ () {
    const s = getSorted()
    return s.length ? s[s.length - 1].z : null
  }

  // ---------------------------------------------------------------- writes
  function transact (fn) { doc.transact(fn, LOCAL) }

  function createShape (type, base) {
    flush()
    const fields = newShapeFields(type, base, style, userName)
    const id = randomId()
    fields.z = keyBetween(topZ(), null)
    transact(() => insertShape(shapesY, { ...fields, id }))
    return id
  }

  /** Local edit: visible immediately, written to Yjs at most every FLUSH_MS. */
  function editShape (id, fields) {
    const s = cache.get(id)
    if (!s) return
    pending.set(id, { ...(pending.get(id) || {}), ...fields })
    damage(s.bbox)
    Object.assign(s, fields)
    finishShape(s)
    damage(s.bbox)
    if ('z' in fields) sortedDirty = true
    scheduleFlush()
    requestRender()
  }
  function scheduleFlush () {
    if (flushTimer) return
    const wait = Math.max(0, FLUSH_MS - (performance.now() - lastFlush))
    flushTimer = setTimeout(flush, wait)
  }
  function flush () {
    if (flushTimer) { clearTimeout(flushTimer); flushTimer = 0 }
    if (!pending.size) return
    lastFlush = performance.now()
    const batch = Array.from(pending.entries())
    pending.clear()
    transact(() => {
      for (const [id, fields] of batch) {
        const m = shapesY.get(id)
        if (!(m instanceof Y.Map)) continue
        for (const [k, v] of Object.entries(fields)) {
          if (Array.isArray(v) || m.get(k) !== v) m.set(k, v)
        }
      }
    })
  }
  function deleteShapes (ids) {
    flush()
    transact(() => { for (const id of ids) shapesY.delete(id) })
  }

  function beginGestureCapture () {
    undo.stopCapturing()
    undo.captureTimeout = 1e9
  }
  function endGestureCapture () {
    flush()
    undo.captureTimeout = 400
    undo.stopCapturing()
  }

  function doUndo () { if (preview) return; if (editing) endEditing(true); flush(); undo.undo(); cleanSelection() }
  function doRedo () { if (preview) return; if (editing) endEditing(true); flush(); undo.redo(); cleanSelection() }
  function cleanSelection () {
    for (const id of selection) if (!cache.has(id)) selection.delete(id)
    updateSelectionUi()
  }
  undo.on('stack-item-added', updateUndoButtons)
  undo.on('stack-item-popped', updateUndoButtons)
  function updateUndoButtons () {
    undoBtn.disabled = !!preview || undo.undoStack.length === 0
    redoBtn.disabled = !!preview || undo.redoStack.length === 0
  }
  updateUndoButtons()

  // ---------------------------------------------------------------- read-only preview of a version
  /** Show `shapes` (a past version, already sorted) instead of the live board, read-only. */
  function enterPreview (version, shapes, info) {
    if (!preview) {
      if (editing) endEditing(true)
      cancelGesture()
      flush()
      setSelection([])
      hoverId = null
    }
    preview = { version, sorted: shapes || (preview && preview.version === version ? preview.sorted : []), info }
    contentVersion++
    boardEl.classList.add('previewing')
    previewBanner.hidden = false
    toolbar.hidden = true
    bannerText.textContent = `Viewing version ${version} — read-only`
    bannerSub.textContent = info ? `${info.user} · ${new Date(info.time).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })} · ${describeSummary(info.summary)}` : ''
    boardEl.dataset.previewVersion = String(version)
    titleInput.readOnly = true
    layoutTopbar()
    renderStylePanel()
    updateUndoButtons()
    updateCursor()
    requestRender()
  }
  function exitPreview () {
    if (!preview) return
    preview = null
    contentVersion++
    sortedDirty = true
    boardEl.classList.remove('previewing')
    delete boardEl.dataset.previewVersion
    previewBanner.hidden = true
    toolbar.hidden = false
    titleInput.readOnly = false
    layoutTopbar()
    renderStylePanel()
    updateUndoButtons()
    updateCursor()
    requestRender()
  }

  // ---------------------------------------------------------------- title
  function renderTitle () {
    const t = metaY.get('title')
    const title = typeof t === 'string' ? t : ''
    if (document.activeElement !== titleInput) titleInput.value = title
    document.title = `${title || 'Untitled board'} · Inkstream`
    requestLayout()
  }
  renderTitle()
  const commitTitle = () => {
    if (preview) return
    const v = titleInput.value.trim().slice(0, 120)
    if (v !== (metaY.get('title') || '')) transact(() => metaY.set('title', v))
  }
  // Convention: Enter (or leaving the field) saves, Escape cancels — said by a hint under the
  // field while it is focused, and a cancel visibly puts the old title back (it flashes).
  titleInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); titleInput.blur() }
    if (e.key === 'Escape') {
      e.preventDefault()
      const before = metaY.get('title') || ''
      const changed = titleInput.value.trim() !== before
      titleInput.value = before
      titleInput.blur()
      if (changed) {
        titleInput.classList.remove('reverted'); void titleInput.offsetWidth; titleInput.classList.add('reverted')
        toast('Title change cancelled', { timeout: 2000 })
      }
      canvas.focus({ preventScroll: true })
    }
  })
  titleInput.addEventListener('input', () => requestLayout()) // the field grows with its text
  titleInput.addEventListener('focus', () => { if (!titleInput.readOnly) titleHint.hidden = false })
  titleInput.addEventListener('blur', () => { titleHint.hidden = true })
  titleInput.addEventListener('blur', commitTitle)
  const isNewBoard = !!sessionStorage.getItem('inkstream:new:' + boardId)
  if (isNewBoard) sessionStorage.removeItem('inkstream:new:' + boardId)
  // "New board" writes nothing until the user draws or names it (no clutter from abandoned
  // boards); it invites a title by focusing the empty title field — after the welcome dialog.

  // ---------------------------------------------------------------- camera
  function loadCam () {
    try {
      const c = JSON.parse(localStorage.getItem('inkstream:cam:' + boardId) || 'null')
      if (c && Number.isFinite(c.x) && Number.isFinite(c.y) && c.zoom > 0) return c
    } catch {}
    return null
  }
  let camSaveTimer = 0
  let camMovingUntil = 0
  function camChanged () {
    camMovingUntil = performance.now() + 180
    zoomLabel.textContent = `${Math.round(cam.zoom * 100)}%`
    clearTimeout(camSaveTimer)
    camSaveTimer = setTimeout(() => { try { localStorage.setItem('inkstream:cam:' + boardId, JSON.stringify(cam)) } catch {} }, 300)
    requestRender()
  }
  const toWorld = (sx, sy) => ({ x: cam.x + sx / cam.zoom, y: cam.y + sy / cam.zoom })
  const toScreen = (wx, wy) => ({ x: (wx - cam.x) * cam.zoom, y: (wy - cam.y) * cam.zoom })
  const zoomDir = { sign: 0, at: 0 } // which way the last zoom step went, and when (scene cache)
  function zoomAt (factor, sx, sy) {
    const z = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, cam.zoom * factor))
    if (z !== cam.zoom) { zoomDir.sign = Math.sign(z - cam.zoom); zoomDir.at = performance.now() }
    const w = toWorld(sx, sy)
    cam = { x: w.x - sx / z, y: w.y - sy / z, zoom: z }
    camChanged()
  }
  function zoomBy (f) { zoomAt(f, canvas.clientWidth / 2, canvas.clientHeight / 2) }
  function zoomTo (z) { zoomAt(z / cam.zoom, canvas.clientWidth / 2, canvas.clientHeight / 2) }
  /**
   * The part of the canvas no floating chrome covers (screen px, canvas-relative): each visible
   * panel/card cuts off the side of the remaining rectangle that loses the least area.
   */
  function clearArea () {
    const W = canvas.clientWidth || innerWidth; const H = canvas.clientHeight || innerHeight
    const cr = canvas.getBoundingClientRect()
    let a = { l: 0, t: 0, r: W, b: H }
    const els = boardEl.querySelectorAll('.title-card, .toolbar, .right-card, .preview-banner, .style-panel, .style-toggle, .history-panel, .zoom-card, .undo-card')
    for (const el of els) {
      if (!el.getClientRects().length) continue
      const q = el.getBoundingClientRect()
      const R = { l: q.left - cr.left, t: q.top - cr.top, r: q.right - cr.left, b: q.bottom - cr.top }
      if (R.r <= a.l || R.l >= a.r || R.b <= a.t || R.t >= a.b) continue
      const options = [{ ...a, l: R.r }, { ...a, r: R.l }, { ...a, t: R.b }, { ...a, b: R.t }]
      const areaOf = (o) => Math.max(0, o.r - o.l) * Math.max(0, o.b - o.t)
      const best = options.reduce((x, y) => (areaOf(y) > areaOf(x) ? y : x))
      if ((best.r - best.l) >= W * 0.3 && (best.b - best.t) >= H * 0.3) a = best
    }
    return { x: a.l, y: a.t, w: a.r - a.l, h: a.b - a.t }
  }
  function zoomToBounds (b, maxZoom = 1) {
    const A = clearArea()
    const pad = Math.min(64, A.w / 8, A.h / 8)
    const z = Math.min(maxZoom, Math.max(MIN_ZOOM, Math.min((A.w - pad * 2) / Math.max(b.w, 1), (A.h - pad * 2) / Math.max(b.h, 1))))
    // centre of the bounds at the centre of the clear area
    cam = { x: b.x + b.w / 2 - (A.x + A.w / 2) / z, y: b.y + b.h / 2 - (A.y + A.h / 2) / z, zoom: z }
    camChanged()
  }
  function zoomToFit (allowMsg = true) {
    const b = unionBounds(getSorted())
    if (!b) { if (allowMsg) toast('Nothing to fit yet — the board is empty'); return }
    zoomToBounds(b, 2)
  }

  // ---------------------------------------------------------------- rendering
  let renderQueued = false
  const stats = { frames: 0, lastMs: 0, totalMs: 0, visible: 0 }
  let expectMarked = false
  function requestRender () {
    if (renderQueued) return
    renderQueued = true
    requestAnimationFrame(render)
  }
  function visibleWorld () {
    return { x: cam.x, y: cam.y, w: canvas.clientWidth / cam.zoom, h: canvas.clientHeight / cam.zoom }
  }
  /** Background and dotted grid of the world rect at `v.x, v.y` in `c`, `scale` device px per CSS px. */
  function drawBackground (c, v, zoom, scale, pxW, pxH, clip = null) {
    c.setTransform(1, 0, 0, 1, 0, 0)
    c.globalAlpha = 1
    c.fillStyle = '#f8f9fc'
    if (clip) c.fillRect(clip.x0 * scale, clip.y0 * scale, (clip.x1 - clip.x0) * scale, (clip.y1 - clip.y0) * scale)
    else c.fillRect(0, 0, pxW, pxH)
    drawGrid(c, { x: v.x, y: v.y, zoom }, pxW / scale, pxH / scale, scale, clip)
  }
  /**
   * Draw the shapes that touch the world rect `v` into `c` (a 2D context whose pixel (0, 0) is
   * world (o.x, o.y), `scale` device pixels per CSS pixel). Returns the number drawn.
   */
  function drawShapes (c, v, o, zoom, scale) {
    c.setTransform(scale * zoom, 0, 0, scale * zoom, -o.x * zoom * scale, -o.y * zoom * scale)
    c.lineCap = 'round'
    c.lineJoin = 'round'
    const vx2 = v.x + v.w; const vy2 = v.y + v.h
    let visible = 0
    const list = getSorted()
    const hideText = editing ? editing.id : null
    for (let i = 0; i < list.length; i++) {
      const s = list[i]
      const b = s.bbox
      if (b.x > vx2 || b.y > vy2 || b.x + b.w < v.x || b.y + b.h < v.y) continue // viewport culling
      visible++
      drawShape(c, s, zoom, { hideText })
    }
    c.globalAlpha = 1
    if (erasing.size) {
      // shapes about to be erased fade out
      c.fillStyle = 'rgba(248,249,252,0.7)'
      for (const id of erasing) {
        const s = cache.get(id)
        if (s) c.fillRect(s.bbox.x - 2 / zoom, s.bbox.y - 2 / zoom, s.bbox.w + 4 / zoom, s.bbox.h + 4 / zoom)
      }
    }
    return visible
  }

  // Scene cache: while the camera moves over a scene with many shapes, a frame is one
  // scaled/translated blit of a bitmap of the scene (background, grid, shapes), rendered once
  // around the viewport (and over the whole board when the board fits in it, so zooming out needs
  // no new render: past its edges the background is drawn fresh); a
  // crisp full render follows as soon as the camera settles. Shape changes meanwhile (others'
  // live edits) do not throw the bitmap away: the world rects they touch are repainted in it
  // (`damage` → `patchSceneCache`), so edits keep showing up during a pan or zoom.
  const sceneCache = { canvas: null, spare: null, version: -1, zoom: 1, x: 0, y: 0, w: 0, h: 0, all: false, dirty: [] }
  const CACHE_MIN_SHAPES = 150 // fewer shapes in view: drawing them directly is as cheap as a blit
  const CACHE_SLICE_MS = 4 // drawing of the next bitmap per frame, while a gesture goes on
  const CACHE_MAX_DIRTY = 64 // more changed rects than this before a frame: render the cache anew
  const CACHE_BANDS = 4 // the background of a bitmap being built is drawn a quarter at a time
  // Bitmaps allocated ahead, when the board is idle (a new 20 MB canvas took 20-45 ms of a frame).
  const canvasPool = []
  let poolTimer = 0
  // Canvas drawing is recorded and rasterised lazily, at the latest on the first blit of the
  // bitmap (measured: frames of 100 ms to 1 s at high zoom). Reading back one pixel of it makes
  // it rasterise now, in the slice that drew it. The pixel is copied into a 1x1 canvas and read
  // back there: a copy alone is recorded lazily too (it forced nothing: whole-board zoom fell from
  // 60 to 47 fps, scene-cache builds 5x slower to first blit), and a readback on the bitmap's own
  // context makes Chrome warn about repeated readbacks unless it is willReadFrequently, which would
  // keep the big bitmaps off the GPU. The 1x1 canvas is willReadFrequently: it costs nothing there.
  const flushCtx = document.createElement('canvas').getContext('2d', { willReadFrequently: true })
  flushCtx.canvas.width = flushCtx.canvas.height = 1
  function rasterizeNow (cc, y = 0) {
    flushCtx.drawImage(cc, 0, Math.min(y, cc.height - 1), 1, 1, 0, 0, 1, 1)
    flushCtx.getImageData(0, 0, 1, 1)
  }
  function fillCanvasPool (W, H) {
    if (poolTimer) return
    const inUse = [sceneCache.canvas, sceneCache.spare, overview.canvas].filter(Boolean).length
    if (inUse + canvasPool.length >= 3) return
    const idle = window.requestIdleCallback || ((f) => setTimeout(f, 200))
    poolTimer = idle(() => {
      poolTimer = 0
      if (performance.now() < camMovingUntil) return
      const cc = document.createElement('canvas')
      cc.width = Math.round(W * 2); cc.height = Math.round(H * 2)
      const c = cc.getContext('2d')
      c.fillRect(0, 0, cc.width, cc.height)
      rasterizeNow(cc) // allocated now
      canvasPool.push(cc)
      fillCanvasPool(W, H)
    })
  }
  // The last whole-board bitmap, kept when a zoom-in replaces it: while zooming out it stands in
  // (blurry) for what the current bitmap does not cover yet, and is shown again once it is sharp
  // enough, instead of rendering all shapes anew. Patched like the current one.
  const overview = { canvas: null, version: -1, zoom: 1, x: 0, y: 0, w: 0, h: 0, all: true, dirty: [] }
  let lastSceneMs = 0
  /** A shape's pixels changed inside world rect `b` (its old or new box). */
  function damage (b) {
    if (!b || preview) return
    for (const sc of [sceneCache, building, overview]) {
      if (!sc || sc.version !== contentVersion) continue
      if (sc.dirty.length >= CACHE_MAX_DIRTY) { sc.version = -1; continue }
      sc.dirty.push({ x: b.x, y: b.y, w: b.w, h: b.h })
    }
  }
  function contentBounds () {
    return unionBounds(getSorted())
  }
  /**
   * Where a scene cache rendered at zoom `z` goes: a world rect `v` twice the viewport's size at
   * that zoom, around the viewport's centre (+ whether it holds the whole board and the view).
   */
  function planSceneCache (W, H, pxW, pxH, z) {
    const cx = cam.x + W / cam.zoom / 2; const cy = cam.y + H / cam.zoom / 2
    let v = { x: cx - W / z, y: cy - H / z, w: W / z * 2, h: H / z * 2 }
    if (z > cam.zoom * 1.2) {
      // zooming in: the view only shrinks, so the bitmap covers just it (and a hair): fewer
      // shapes to draw than the view and half a screen around it
      z = Math.min(MAX_ZOOM, Math.max(z, pxW / (W / cam.zoom) / 1.02))
      v = { x: cx - pxW / z / 2, y: cy - pxH / z / 2, w: pxW / z, h: pxH / z }
    }
    // ...or, when the whole board and the view fit in that many pixels, all of it
    const b = contentBounds()
    let all = false
    if (b) {
      const pad = 4 / z
      const x0 = Math.min(b.x - pad, cam.x); const y0 = Math.min(b.y - pad, cam.y)
      const x1 = Math.max(b.x + b.w + pad, cam.x + W / cam.zoom); const y1 = Math.max(b.y + b.h + pad, cam.y + H / cam.zoom)
      if ((x1 - x0) * z <= pxW && (y1 - y0) * z <= pxH) {
        v = { x: (x0 + x1) / 2 - pxW / z / 2, y: (y0 + y1) / 2 - pxH / z / 2, w: pxW / z, h: pxH / z }
        all = true
      }
    }
    return { v, all, zoom: z }
  }
  /**
   * Start rendering a scene cache for the current camera into a spare bitmap. `stepBuild` draws
   * it a slice at a time, between frames of a gesture, while the current one is still shown;
   * `finish` swaps them.
   */
  let building = null
  function startBuild (W, H, zoomAhead = 1) {
    const pxW = Math.round(W * 2); const pxH = Math.round(H * 2)
    const plan = planSceneCache(W, H, pxW, pxH, Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, cam.zoom * zoomAhead)))
    let cc = sceneCache.spare
    if (!cc) cc = sceneCache.spare = canvasPool.pop() || document.createElement('canvas')
    if (cc.width !== pxW || cc.height !== pxH) { cc.width = pxW; cc.height = pxH }
    const c = cc.getContext('2d')
    // background and grid are drawn by stepBuild too, in bands (rasterising all of it at once
    // took 10-15 ms of a frame)
    building = { canvas: cc, c, ...plan, list: getSorted(), i: 0, band: 0, version: contentVersion, dirty: [] }
    return building
  }
  /** Draw more of the cache being built, for about `budgetMs`; true when it is complete (and swapped in). */
  function stepBuild (budgetMs) {
    const bd = building
    if (!bd) return false
    if (bd.version !== contentVersion) { building = null; return false }
    const t0 = performance.now()
    const { c, v, zoom: z, list } = bd
    const pxW = bd.canvas.width; const pxH = bd.canvas.height
    while (bd.band < CACHE_BANDS) {
      const y0 = Math.round(bd.band * pxH / CACHE_BANDS); const y1 = Math.round((bd.band + 1) * pxH / CACHE_BANDS)
      drawBackground(c, v, z, 1, pxW, pxH, { x0: 0, y0, x1: pxW, y1 })
      rasterizeNow(bd.canvas, y0)
      bd.band++
      if (performance.now() - t0 > budgetMs) { stats.buildMs = (stats.buildMs || 0) + performance.now() - t0; return false }
    }
    c.setTransform(z, 0, 0, z, -v.x * z, -v.y * z)
    c.lineCap = 'round'
    c.lineJoin = 'round'
    const vx2 = v.x + v.w; const vy2 = v.y + v.h
    const hideText = editing ? editing.id : null
    let i = bd.i
    while (i < list.length) {
      const end = Math.min(list.length, i + 200)
      for (; i < end; i++) {
        const s = list[i]
        const b = s.bbox
        if (b.x > vx2 || b.y > vy2 || b.x + b.w < v.x || b.y + b.h < v.y) continue
        drawShape(c, s, z, { hideText })
      }
      c.globalAlpha = 1
      // Rasterise now, in this slice, not all at the first blit (see rasterizeNow)
      rasterizeNow(bd.canvas)
      if (performance.now() - t0 > budgetMs) break
    }
    bd.i = i
    stats.buildMs = (stats.buildMs || 0) + performance.now() - t0
    if (i < list.length) return false
    // done: swap bitmaps; shapes that changed meanwhile are repainted by the next patch
    let old = sceneCache.canvas
    if (sceneCache.all && sceneCache.version === bd.version && !bd.all && old) {
      // a zoom-in leaves the whole board: keep that bitmap as the overview
      const spare = overview.canvas
      Object.assign(overview, { canvas: old, version: sceneCache.version, zoom: sceneCache.zoom, x: sceneCache.x, y: sceneCache.y, w: sceneCache.w, h: sceneCache.h, dirty: sceneCache.dirty })
      old = spare
    }
    Object.assign(sceneCache, { canvas: bd.canvas, spare: old, version: bd.version, zoom: z, ...v, all: bd.all, dirty: bd.dirty })
    building = null
    stats.cacheBuilds = (stats.cacheBuilds || 0) + 1
    return true
  }
  function buildSceneCache (W, H) {
    startBuild(W, H)
    stepBuild(Infinity)
  }
  /** Repaint the changed rects of the scene cache (clear each, redraw the shapes touching it). */
  function patchSceneCache (sc = sceneCache) {
    if (!sc.dirty.length) return
    const c = sc.canvas.getContext('2d')
    const z = sc.zoom
    for (const d of sc.dirty) {
      const m = 2 / z // antialiasing
      const r = { x: d.x - m, y: d.y - m, w: d.w + 2 * m, h: d.h + 2 * m }
      if (r.x + r.w < sc.x || r.y + r.h < sc.y || r.x > sc.x + sc.w || r.y > sc.y + sc.h) {
        if (sc === overview) { sc.version = -1; break } // no longer the whole board
        sc.all = false // a shape outside the bitmap: it no longer holds the whole board
        continue
      }
      // in whole bitmap pixels
      const px0 = Math.max(0, Math.floor((r.x - sc.x) * z)); const py0 = Math.max(0, Math.floor((r.y - sc.y) * z))
      const px1 = Math.min(sc.canvas.width, Math.ceil((r.x + r.w - sc.x) * z)); const py1 = Math.min(sc.canvas.height, Math.ceil((r.y + r.h - sc.y) * z))
      if (px1 <= px0 || py1 <= py0) continue
      c.save()
      c.setTransform(1, 0, 0, 1, 0, 0)
      c.beginPath()
      c.rect(px0, py0, px1 - px0, py1 - py0)
      c.clip()
      drawBackground(c, sc, z, 1, sc.canvas.width, sc.canvas.height, { x0: px0, y0: py0, x1: px1, y1: py1 })
      drawShapes(c, { x: sc.x + px0 / z, y: sc.y + py0 / z, w: (px1 - px0) / z, h: (py1 - py0) / z }, sc, z, 1)
      c.restore()
    }
    if (sc.version === -1) return
    sc.dirty = []
    stats.cachePatches = (stats.cachePatches || 0) + 1
  }
  /**
   * Draw the frame from the scene cache if it can stand for the current view. While it does, the
   * next bitmap is rendered a slice per frame when this one gets blurry or the view nears its
   * edge — for where a zoom is heading (half as far again: one bitmap then lasts from here to 3x
   * further in, or a third of the way out), not just for here.
   */
  function blitSceneCache (dpr, W, H, mayBuild = true) {
    const sc = sceneCache
    if (!sc.canvas || sc.version !== contentVersion) return false
    const ratio = cam.zoom / sc.zoom
    const vw = W / cam.zoom; const vh = H / cam.zoom
    const inside = (m) => cam.x - m * vw >= sc.x && cam.y - m * vh >= sc.y && cam.x + vw * (1 + m) <= sc.x + sc.w && cam.y + vh * (1 + m) <= sc.y + sc.h
    const ovOk = overview.canvas && overview.version === contentVersion
    if (ovOk && overview.dirty.length >= CACHE_MAX_DIRTY) overview.version = -1
    const partial = !sc.all && (ratio < 0.5 || !inside(0)) // part of the view never rendered
    if (partial && !ovOk) return false
    if (partial && cam.zoom / overview.zoom <= 1.3 && sc !== overview) {
      // zoomed out to where the whole-board bitmap is sharp enough: show it again
      const keep = { canvas: sc.canvas, version: sc.version, zoom: sc.zoom, x: sc.x, y: sc.y, w: sc.w, h: sc.h, all: sc.all, dirty: sc.dirty }
      Object.assign(sc, { canvas: overview.canvas, version: overview.version, zoom: overview.zoom, x: overview.x, y: overview.y, w: overview.w, h: overview.h, all: true, dirty: overview.dirty })
      Object.assign(overview, { canvas: null, version: -1 })
      sc.spare = keep.canvas
      building = null
      stats.overviewSwaps = (stats.overviewSwaps || 0) + 1
      return blitSceneCache(dpr, W, H, mayBuild)
    }
    if (ratio > 4) return false // too blurry
    if (mayBuild) {
      const dir = performance.now() - zoomDir.at < 300 ? zoomDir.sign : 0
      if (!building) {
        const tooBlurry = ratio > 1.3; const tooSmall = !sc.all && ratio < 0.77
        if (dir > 0 ? tooBlurry : dir < 0 ? tooSmall : tooBlurry || tooSmall) startBuild(W, H, dir > 0 ? 1.5 : dir < 0 ? 1 / 1.5 : 1)
        else if (dir === 0 && !sc.all && !inside(0.25)) startBuild(W, H, 1)
      }
      if (building && stepBuild(ratio > 2 && !partial ? 2 * CACHE_SLICE_MS : CACHE_SLICE_MS)) {
        // done: show the new one
        return blitSceneCache(dpr, W, H, false)
      }
    }
    patchSceneCache()
    ctx.setTransform(1, 0, 0, 1, 0, 0)
    ctx.imageSmoothingEnabled = true
    if (partial) {
      // the whole board, blurry, under what the current bitmap does not cover yet
      patchSceneCache(overview)
      const ov = overview
      const ovInside = cam.x >= ov.x && cam.y >= ov.y && cam.x + vw <= ov.x + ov.w && cam.y + vh <= ov.y + ov.h
      if (!ovInside) drawBackground(ctx, visibleWorld(), cam.zoom, dpr, canvas.width, canvas.height)
      if (ov.version === contentVersion) {
        const ko = cam.zoom / ov.zoom * dpr
        ctx.drawImage(ov.canvas, (ov.x - cam.x) * cam.zoom * dpr, (ov.y - cam.y) * cam.zoom * dpr, ov.canvas.width * ko, ov.canvas.height * ko)
      }
    } else if (!inside(0)) drawBackground(ctx, visibleWorld(), cam.zoom, dpr, canvas.width, canvas.height) // around the bitmap (zoomed out past it)
    const k = ratio * dpr // cache pixel -> device pixel
    ctx.imageSmoothingEnabled = true
    ctx.drawImage(sc.canvas, (sc.x - cam.x) * cam.zoom * dpr, (sc.y - cam.y) * cam.zoom * dpr, sc.canvas.width * k, sc.canvas.height * k)
    stats.cacheBlits = (stats.cacheBlits || 0) + 1
    return true
  }
  let settleTimer = 0

  function render () {
    renderQueued = false
    const t0 = performance.now()
    const dpr = Math.min(window.devicePixelRatio || 1, 2)
    const W = canvas.clientWidth; const H = canvas.clientHeight
    if (canvas.width !== Math.round(W * dpr) || canvas.height !== Math.round(H * dpr)) {
      canvas.width = Math.round(W * dpr)
      canvas.height = Math.round(H * dpr)
    }
    const moving = t0 < camMovingUntil && !gestureEditsContent()
    let blitted = false
    if (moving) {
      blitted = blitSceneCache(dpr, W, H)
      // Canvas drawing is mostly rasterised after this function returns, so its JS time
      // understates it: the number of shapes in view decides, as well as the time.
      if (!blitted && (stats.visible >= CACHE_MIN_SHAPES || lastSceneMs > 6)) { buildSceneCache(W, H); blitted = blitSceneCache(dpr, W, H, false) }
    }
    if (!moving) building = null // the camera settled: a bitmap for where it was is of no use
    if (!moving && stats.visible >= CACHE_MIN_SHAPES) fillCanvasPool(W, H)
    if (!blitted) {
      const s0 = performance.now()
      const v = visibleWorld()
      drawBackground(ctx, v, cam.zoom, dpr, canvas.width, canvas.height)
      stats.visible = drawShapes(ctx, v, v, cam.zoom, dpr)
      lastSceneMs = performance.now() - s0
    }
    if (moving) {
      clearTimeout(settleTimer)
      settleTimer = setTimeout(requestRender, camMovingUntil - t0 + 5)
    }
    // overlays in screen space
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0)
    drawRemoteSelections()
    drawHover()
    drawSelection()
    drawGestureOverlay()
    positionCursors()
    if (editing) positionEditor()
    stats.frames++
    stats.lastMs = performance.now() - t0
    stats.totalMs += stats.lastMs
    emptyHint.hidden = (preview ? preview.sorted.length > 0 : cache.size > 0) || !firstContentDone
    emptyHint.firstChild.textContent = preview ? `Version ${preview.version} is empty` : 'This board is empty'
    emptyHint.lastChild.hidden = !!preview
    if (!expectMarked && window.__inkstreamExpect && cache.size >= window.__inkstreamExpect) {
      expectMarked = true
      performance.mark('inkstream:rendered')
    }
  }

  function screenBox (b) {
    const p = toScreen(b.x, b.y)
    return { x: p.x, y: p.y, w: b.w * cam.zoom, h: b.h * cam.zoom }
  }
  function selectionBounds (ids) {
    let minX = Infinity; let minY = Infinity; let maxX = -Infinity; let maxY = -Infinity
    for (const id of ids) {
      const s = cache.get(id)
      if (!s) continue
      const b = s.rotation ? s.bbox : shapeBox(s)
      minX = Math.min(minX, b.x); minY = Math.min(minY, b.y)
      maxX = Math.max(maxX, b.x + b.w); maxY = Math.max(maxY, b.y + b.h)
    }
    if (minX === Infinity) return null
    return { x: minX, y: minY, w: maxX - minX, h: maxY - minY }
  }
  function singleLine () {
    if (selection.size !== 1) return null
    const s = cache.get([...selection][0])
    if (s && (s.type === 'line' || s.type === 'arrow') && s.points && s.points.length === 4 && !s.rotation) return s
    return null
  }
  function handlePositions () {
    const line = singleLine()
    if (line) {
      const a = toScreen(line.x + line.points[0], line.y + line.points[1])
      const b = toScreen(line.x + line.points[2], line.y + line.points[3])
      return [{ k: 'p0', x: a.x, y: a.y }, { k: 'p1', x: b.x, y: b.y }]
    }
    const b = selectionBounds(selection)
    if (!b) return []
    const sb = screenBox(b)
    const out = [
      { k: 'nw', x: sb.x, y: sb.y }, { k: 'ne', x: sb.x + sb.w, y: sb.y },
      { k: 'sw', x: sb.x, y: sb.y + sb.h }, { k: 'se', x: sb.x + sb.w, y: sb.y + sb.h }
    ]
    if (sb.w > 40) out.push({ k: 'n', x: sb.x + sb.w / 2, y: sb.y }, { k: 's', x: sb.x + sb.w / 2, y: sb.y + sb.h })
    if (sb.h > 40) out.push({ k: 'w', x: sb.x, y: sb.y + sb.h / 2 }, { k: 'e', x: sb.x + sb.w, y: sb.y + sb.h / 2 })
    return out
  }
  const ACCENT = '#4f5bd5'
  function drawSelection () {
    if (!selection.size || (gesture && gesture.kind === 'marquee')) return
    ctx.lineWidth = 1
    ctx.strokeStyle = ACCENT
    if (selection.size > 1) {
      ctx.setLineDash([])
      for (const id of selection) {
        const s = cache.get(id)
        if (!s) continue
        const sb = screenBox(s.rotation ? s.bbox : shapeBox(s))
        ctx.globalAlpha = 0.5
        ctx.strokeRect(sb.x - 2, sb.y - 2, sb.w + 4, sb.h + 4)
      }
      ctx.globalAlpha = 1
    }
    const line = singleLine()
    if (!line) {
      const b = selectionBounds(selection)
      if (!b) return
      const sb = screenBox(b)
      ctx.strokeRect(Math.round(sb.x - 4) + 0.5, Math.round(sb.y - 4) + 0.5, Math.round(sb.w + 8), Math.round(sb.h + 8))
    }
    if (gesture && gesture.kind === 'move') return
    for (const p of handlePositions()) {
      const off = line ? 0 : ({ nw: [-4, -4], ne: [4, -4], sw: [-4, 4], se: [4, 4], n: [0, -4], s: [0, 4], w: [-4, 0], e: [4, 0] }[p.k] || [0, 0])
      ctx.fillStyle = '#ffffff'
      ctx.strokeStyle = ACCENT
      ctx.lineWidth = 1.5
      ctx.beginPath()
      if (line) ctx.arc(p.x, p.y, 5, 0, Math.PI * 2)
      else ctx.rect(p.x + off[0] - HANDLE / 2, p.y + off[1] - HANDLE / 2, HANDLE, HANDLE)
      ctx.fill(); ctx.stroke()
    }
  }
  function drawHover () {
    if (!hoverId || selection.has(hoverId) || gesture || tool !== 'select') return
    const s = cache.get(hoverId)
    if (!s) return
    const sb = screenBox(s.rotation ? s.bbox : shapeBox(s))
    ctx.strokeStyle = ACCENT
    ctx.globalAlpha = 0.45
    ctx.lineWidth = 1.5
    ctx.strokeRect(sb.x - 3, sb.y - 3, sb.w + 6, sb.h + 6)
    ctx.globalAlpha = 1
  }
  function drawRemoteSelections () {
    if (preview) return
    awareness.getStates().forEach((st, clientId) => {
      if (clientId === doc.clientID || !st || !Array.isArray(st.selection) || !st.selection.length) return
      const c = (st.user && st.user.color) || '#868e96'
      ctx.strokeStyle = c
      ctx.lineWidth = 2
      ctx.setLineDash([6, 4])
      for (const id of st.selection) {
        const s = cache.get(id)
        if (!s) continue
        const sb = screenBox(s.rotation ? s.bbox : shapeBox(s))
        ctx.strokeRect(sb.x - 5, sb.y - 5, sb.w + 10, sb.h + 10)
      }
      ctx.setLineDash([])
    })
  }
  function drawGestureOverlay () {
    if (!gesture) return
    if (gesture.kind === 'marquee' && gesture.started) {
      const a = toScreen(gesture.x0, gesture.y0); const b = toScreen(gesture.x1, gesture.y1)
      ctx.fillStyle = 'rgba(79,91,213,0.08)'
      ctx.strokeStyle = ACCENT
      ctx.lineWidth = 1
      const x = Math.min(a.x, b.x); const y = Math.min(a.y, b.y)
      ctx.fillRect(x, y, Math.abs(b.x - a.x), Math.abs(b.y - a.y))
      ctx.strokeRect(x + 0.5, y + 0.5, Math.abs(b.x - a.x), Math.abs(b.y - a.y))
    }
    if (gesture.kind === 'erase' && gesture.trail.length > 1) {
      ctx.strokeStyle = 'rgba(134,142,150,0.5)'
      ctx.lineWidth = 6
      ctx.lineCap = 'round'
      ctx.lineJoin = 'round'
      ctx.beginPath()
      gesture.trail.forEach((p, i) => { const s = toScreen(p.x, p.y); if (i) ctx.lineTo(s.x, s.y); else ctx.moveTo(s.x, s.y) })
      ctx.stroke()
    }
  }

  // ---------------------------------------------------------------- hit testing
  function distToSeg (px, py, x1, y1, x2, y2) {
    const dx = x2 - x1; const dy = y2 - y1
    const l2 = dx * dx + dy * dy
    let t = l2 ? ((px - x1) * dx + (py - y1) * dy) / l2 : 0
    t = Math.max(0, Math.min(1, t))
    return Math.hypot(px - (x1 + t * dx), py - (y1 + t * dy))
  }
  function pointInPoly (px, py, p) {
    let inside = false
    for (let i = 0, j = p.length - 2; i < p.length; j = i, i += 2) {
      const xi = p[i]; const yi = p[i + 1]; const xj = p[j]; const yj = p[j + 1]
      if ((yi > py) !== (yj > py) && px < ((xj - xi) * (py - yi)) / (yj - yi) + xi) inside = !inside
    }
    return inside
  }
  function hitShape (s, wx, wy, tol) {
    const b = s.bbox
    if (wx < b.x - tol || wx > b.x + b.w + tol || wy < b.y - tol || wy > b.y + b.h + tol) return false
    let px = wx; let py = wy
    if (s.rotation) {
      const cx = s.x + s.lx + s.lw / 2; const cy = s.y + s.ly + s.lh / 2
      const c = Math.cos(-s.rotation); const si = Math.sin(-s.rotation)
      px = cx + (wx - cx) * c - (wy - cy) * si
      py = cy + (wx - cx) * si + (wy - cy) * c
    }
    const hw = s.width / 2 + tol
    switch (s.type) {
      case 'rect':
      case 'image': {
        const inside = px >= s.x - hw && px <= s.x + s.w + hw && py >= s.y - hw && py <= s.y + s.h + hw
        if (!inside) return false
        if (s.fill !== 'transparent' || s.type === 'image') return true
        return px <= s.x + hw || px >= s.x + s.w - hw || py <= s.y + hw || py >= s.y + s.h - hw
      }
      case 'ellipse': {
        const rx = Math.max(s.w / 2, 0.5); const ry = Math.max(s.h / 2, 0.5)
        const dx = (px - s.x - rx) / rx; const dy = (py - s.y - ry) / ry
        const d = Math.hypot(dx, dy)
        const m = hw / Math.min(rx, ry)
        if (s.fill !== 'transparent') return d <= 1 + m
        return Math.abs(d - 1) <= m
      }
      case 'text':
      case 'sticky':
        return px >= s.x - tol && px <= s.x + s.w + tol && py >= s.y - tol && py <= s.y + s.h + tol
      case 'stroke':
      case 'line':
      case 'arrow': {
        const p = s.points || []
        const lx = px - s.x; const ly = py - s.y
        if (p.length === 2) return Math.hypot(lx - p[0], ly - p[1]) <= hw
        for (let i = 0; i + 3 < p.length; i += 2) if (distToSeg(lx, ly, p[i], p[i + 1], p[i + 2], p[i + 3]) <= hw) return true
        if (s.type === 'line' && s.fill !== 'transparent' && isClosed(p)) return pointInPoly(lx, ly, p)
        return false
      }
      default:
        return px >= s.x && px <= s.x + s.w && py >= s.y && py <= s.y + s.h
    }
  }
  /** Inside an unfilled rectangle, ellipse or closed polygon (its outline is hit by hitShape). */
  function insideHollow (s, wx, wy) {
    if (s.fill !== 'transparent' || s.rotation) return false
    if (s.type === 'rect') return wx >= s.x && wx <= s.x + s.w && wy >= s.y && wy <= s.y + s.h
    if (s.type === 'ellipse') {
      const rx = Math.max(s.w / 2, 0.5); const ry = Math.max(s.h / 2, 0.5)
      return Math.hypot((wx - s.x - rx) / rx, (wy - s.y - ry) / ry) <= 1
    }
    if (s.type === 'line' && s.points && isClosed(s.points)) return pointInPoly(wx - s.x, wy - s.y, s.points)
    return false
  }
  /**
   * The shape under a point: outlines, ink and filled areas first (front to back); else, for
   * selecting (`interior`), the smallest hollow shape whose inside holds the point — so clicking
   * inside an unfilled box selects it, and shapes drawn inside a big box stay clickable.
   */
  function hitTest (wx, wy, tolPx = 6, interior = true) {
    const tol = tolPx / cam.zoom
    const list = getSorted()
    for (let i = list.length - 1; i >= 0; i--) if (hitShape(list[i], wx, wy, tol)) return list[i]
    if (!interior) return null
    let best = null
    for (let i = list.length - 1; i >= 0; i--) {
      const s = list[i]
      if (s.bbox.x > wx || s.bbox.y > wy || s.bbox.x + s.bbox.w < wx || s.bbox.y + s.bbox.h < wy) continue
      if (insideHollow(s, wx, wy) && (!best || s.w * s.h < best.w * best.h)) best = s
    }
    return best
  }
  function hitHandle (sx, sy) {
    if (tool !== 'select' || !selection.size) return null
    for (const p of handlePositions()) {
      const off = singleLine() ? [0, 0] : ({ nw: [-4, -4], ne: [4, -4], sw: [-4, 4], se: [4, 4], n: [0, -4], s: [0, 4], w: [-4, 0], e: [4, 0] }[p.k])
      if (Math.abs(sx - p.x - off[0]) <= 7 && Math.abs(sy - p.y - off[1]) <= 7) return p.k
    }
    return null
  }
  const HANDLE_CURSORS = { nw: 'nwse-resize', se: 'nwse-resize', ne: 'nesw-resize', sw: 'nesw-resize', n: 'ns-resize', s: 'ns-resize', e: 'ew-resize', w: 'ew-resize', p0: 'move', p1: 'move' }

  // ---------------------------------------------------------------- selection
  function setSelection (ids) {
    selection.clear()
    for (const id of ids) if (cache.has(id)) selection.add(id)
    updateSelectionUi()
    requestRender()
  }
  function updateSelectionUi () {
    awareness.setLocalStateField('selection', [...selection])
    renderStylePanel()
  }

  // ---------------------------------------------------------------- tools
  function setTool (t) {
    if (editing) endEditing(true)
    if (styleOpen && t !== tool) setStyleOpen(false)
    tool = t
    for (const [id, b] of toolButtons) {
      b.classList.toggle('active', id === t)
      b.setAttribute('aria-pressed', String(id === t))
    }
    if (t !== 'select') setSelection([])
    canvas.dataset.tool = t
    updateCursor()
    renderStylePanel()
  }
  function updateCursor (handle) {
    let c = 'default'
    if (spaceDown || preview || (gesture && gesture.kind === 'pan')) c = gesture ? 'grabbing' : 'grab'
    else if (handle) c = HANDLE_CURSORS[handle]
    else if (tool === 'pen' || tool === 'rect' || tool === 'ellipse' || tool === 'line' || tool === 'arrow' || tool === 'sticky') c = 'crosshair'
    else if (tool === 'text') c = 'text'
    else if (tool === 'eraser') c = 'cell'
    else if (tool === 'select' && hoverId) c = 'move'
    canvas.style.cursor = c
  }

  // ---------------------------------------------------------------- pointer input
  const pointers = new Map() // pointerId -> {x, y} (screen) for pinch
  let pinch = null
  function localPoint (e) {
    const r = canvas.getBoundingClientRect()
    return { sx: e.clientX - r.left, sy: e.clientY - r.top }
  }

  // Focus is managed by hand (the canvas, or an in-place text editor opened on pointerdown).
  canvas.addEventListener('mousedown', (e) => e.preventDefault())
  canvas.addEventListener('pointerdown', (e) => {
    canvas.focus({ preventScroll: true })
    closeMenu()
    closePeopleMenu()
    if (styleOpen) setStyleOpen(false)
    if (editing) { endEditing(true); if (tool !== 'select') return }
    const { sx, sy } = localPoint(e)
    pointers.set(e.pointerId, { x: sx, y: sy })
    try { canvas.setPointerCapture(e.pointerId) } catch {}
    if (pointers.size === 2) {
      // two fingers: pinch-zoom / pan; abandon any single-pointer gesture
      cancelGesture()
      const [a, b] = [...pointers.values()]
      pinch = { d: Math.hypot(a.x - b.x, a.y - b.y), cx: (a.x + b.x) / 2, cy: (a.y + b.y) / 2 }
      return
    }
    if (pointers.size > 2) return
    const w = toWorld(sx, sy)
    if (e.button === 1 || spaceDown || (e.button === 0 && e.altKey && tool !== 'select') || (preview && e.button === 0)) {
      gesture = { kind: 'pan', sx, sy, cam: { ...cam } }
      updateCursor()
      return
    }
    if (e.button !== 0) return
    startGesture(e, sx, sy, w)
  })

  function startGesture (e, sx, sy, w) {
    const shift = e.shiftKey
    switch (tool) {
      case 'select': {
        const handle = hitHandle(sx, sy)
        if (handle) {
          beginGestureCapture()
          const orig = new Map()
          for (const id of selection) { const s = cache.get(id); if (s) orig.set(id, { ...s, points: s.points ? [...s.points] : null }) }
          // keep the grab offset so the edge follows the pointer exactly
          const hp = handlePositions().find((p) => p.k === handle)
          const hw = toWorld(hp.x, hp.y)
          gesture = { kind: 'resize', handle, orig, bounds: selectionBounds(selection), grab: { x: w.x - hw.x, y: w.y - hw.y } }
          return
        }
        const hit = hitTest(w.x, w.y)
        if (hit) {
          if (shift) {
            if (selection.has(hit.id)) selection.delete(hit.id); else selection.add(hit.id)
            updateSelectionUi(); requestRender()
            if (!selection.has(hit.id)) return
          } else if (!selection.has(hit.id)) setSelection([hit.id])
          const orig = new Map()
          for (const id of selection) { const s = cache.get(id); if (s) orig.set(id, { x: s.x, y: s.y }) }
          gesture = { kind: 'move', orig, startW: w, sx, sy, started: false }
        } else {
          if (!shift) setSelection([])
          gesture = { kind: 'marquee', x0: w.x, y0: w.y, x1: w.x, y1: w.y, base: shift ? new Set(selection) : new Set(), sx, sy, started: false }
        }
        return
      }
      case 'pen': {
        beginGestureCapture()
        const id = createShape('stroke', { x: round(w.x), y: round(w.y), points: [0, 0], fill: 'transparent' })
        gesture = { kind: 'stroke', id, ox: round(w.x), oy: round(w.y), pts: [0, 0], last: { x: sx, y: sy } }
        return
      }
      case 'rect':
      case 'ellipse':
      case 'line':
      case 'arrow':
        beginGestureCapture()
        gesture = { kind: 'create', type: tool, x0: w.x, y0: w.y, sx, sy, id: null }
        return
      case 'sticky': {
        const id = createShape('sticky', { x: round(w.x - 100), y: round(w.y - 100), w: 200, h: 200, fill: style.fill === 'transparent' ? '#ffec99' : style.fill, font: Math.min(style.font, 24), stroke: '#1e1e2e', text: '' })
        setTool('select')
        setSelection([id])
        startEditing(id, false)
        return
      }
      case 'text': {
        const hit = hitTest(w.x, w.y)
        if (hit && TEXT_TYPES.has(hit.type)) { setTool('select'); setSelection([hit.id]); startEditing(hit.id, false); return }
        startNewText(w.x, w.y - style.font * LINE_HEIGHT / 2)
        return
      }
      case 'eraser': {
        beginGestureCapture()
        gesture = { kind: 'erase', trail: [w] }
        eraseAt(w, w)
        return
      }
    }
  }

  canvas.addEventListener('pointermove', (e) => {
    const { sx, sy } = localPoint(e)
    if (pointers.has(e.pointerId)) pointers.set(e.pointerId, { x: sx, y: sy })
    const w = toWorld(sx, sy)
    sendCursor(w)
    if (pinch && pointers.size === 2) {
      const [a, b] = [...pointers.values()]
      const d = Math.hypot(a.x - b.x, a.y - b.y)
      const cx = (a.x + b.x) / 2; const cy = (a.y + b.y) / 2
      cam = { ...cam, x: cam.x - (cx - pinch.cx) / cam.zoom, y: cam.y - (cy - pinch.cy) / cam.zoom }
      zoomAt(d / (pinch.d || d), cx, cy)
      pinch = { d, cx, cy }
      return
    }
    if (!gesture) {
      if (tool === 'select' && !preview) {
        const handle = hitHandle(sx, sy)
        const hit = handle ? null : hitTest(w.x, w.y)
        const nid = hit ? hit.id : null
        if (nid !== hoverId) { hoverId = nid; requestRender() }
        updateCursor(handle)
      }
      return
    }
    // Use coalesced events for smooth strokes without extra Yjs updates.
    const evs = gesture.kind === 'stroke' && e.getCoalescedEvents ? e.getCoalescedEvents() : [e]
    for (const ev of (evs.length ? evs : [e])) moveGesture(ev, ev === e ? { sx, sy } : localPoint(ev))
  })

  function moveGesture (e, { sx, sy }) {
    const g = gesture
    const w = toWorld(sx, sy)
    switch (g.kind) {
      case 'pan':
        cam = { ...g.cam, x: g.cam.x - (sx - g.sx) / cam.zoom, y: g.cam.y - (sy - g.sy) / cam.zoom }
        camChanged()
        return
      case 'stroke': {
        if (Math.hypot(sx - g.last.x, sy - g.last.y) < 1.5) return
        g.last = { x: sx, y: sy }
        g.pts.push(round(w.x - g.ox), round(w.y - g.oy))
        editShape(g.id, { points: g.pts.slice() })
        return
      }
      case 'create': {
        if (!g.id && Math.hypot(sx - g.sx, sy - g.sy) < 4) return
        let x1 = w.x; let y1 = w.y
        if (e.shiftKey) {
          if (g.type === 'line' || g.type === 'arrow') {
            const a = Math.round(Math.atan2(y1 - g.y0, x1 - g.x0) / (Math.PI / 12)) * (Math.PI / 12)
            const len = Math.hypot(x1 - g.x0, y1 - g.y0)
            x1 = g.x0 + Math.cos(a) * len; y1 = g.y0 + Math.sin(a) * len
          } else {
            const d = Math.max(Math.abs(x1 - g.x0), Math.abs(y1 - g.y0))
            x1 = g.x0 + Math.sign(x1 - g.x0 || 1) * d; y1 = g.y0 + Math.sign(y1 - g.y0 || 1) * d
          }
        }
        const f = geometryFor(g.type, g.x0, g.y0, x1, y1)
        if (!g.id) g.id = createShape(g.type, f)
        else editShape(g.id, f)
        return
      }
      case 'move': {
        if (!g.started && Math.hypot(sx - g.sx, sy - g.sy) < 3) return
        if (!g.started) { g.started = true; beginGestureCapture() }
        let dx = w.x - g.startW.x; let dy = w.y - g.startW.y
        if (e.shiftKey) { if (Math.abs(dx) > Math.abs(dy)) dy = 0; else dx = 0 }
        for (const [id, o] of g.orig) editShape(id, { x: round(o.x + dx), y: round(o.y + dy) })
        return
      }
      case 'resize':
        resizeTo(g, w, e.shiftKey)
        return
      case 'marquee': {
        if (!g.started && Math.hypot(sx - g.sx, sy - g.sy) < 3) return
        g.started = true
        g.x1 = w.x; g.y1 = w.y
        const rx = Math.min(g.x0, g.x1); const ry = Math.min(g.y0, g.y1)
        const rw = Math.abs(g.x1 - g.x0); const rh = Math.abs(g.y1 - g.y0)
        const ids = new Set(g.base)
        for (const s of getSorted()) {
          const b = s.bbox
          if (b.x <= rx + rw && b.x + b.w >= rx && b.y <= ry + rh && b.y + b.h >= ry) ids.add(s.id)
        }
        selection.clear()
        for (const id of ids) selection.add(id)
        requestRender()
        return
      }
      case 'erase': {
        const prev = g.trail[g.trail.length - 1]
        g.trail.push(w)
        if (g.trail.length > 24) g.trail.shift()
        eraseAt(prev, w)
        requestRender()
      }
    }
  }

  function geometryFor (type, x0, y0, x1, y1) {
    if (type === 'line' || type === 'arrow') {
      return { x: round(x0), y: round(y0), points: [0, 0, round(x1 - x0), round(y1 - y0)], w: round(Math.abs(x1 - x0)), h: round(Math.abs(y1 - y0)) }
    }
    return { x: round(Math.min(x0, x1)), y: round(Math.min(y0, y1)), w: round(Math.abs(x1 - x0)), h: round(Math.abs(y1 - y0)) }
  }

  function resizeTo (g, pw, keepRatio) {
    const w = { x: pw.x - g.grab.x, y: pw.y - g.grab.y }
    if (g.handle === 'p0' || g.handle === 'p1') {
      const [id, o] = [...g.orig][0]
      const ax = o.x + (g.handle === 'p0' ? o.points[2] : o.points[0])
      const ay = o.y + (g.handle === 'p0' ? o.points[3] : o.points[1])
      const pts = g.handle === 'p0' ? [0, 0, round(ax - w.x), round(ay - w.y)] : [0, 0, round(w.x - ax), round(w.y - ay)]
      const origin = g.handle === 'p0' ? { x: round(w.x), y: round(w.y) } : { x: round(ax), y: round(ay) }
      // keep the drawing direction: p0 -> p1
      if (g.handle === 'p0') editShape(id, { x: origin.x, y: origin.y, points: [0, 0, round(ax - w.x), round(ay - w.y)], w: Math.abs(pts[2]), h: Math.abs(pts[3]) })
      else editShape(id, { x: origin.x, y: origin.y, points: pts, w: Math.abs(pts[2]), h: Math.abs(pts[3]) })
      return
    }
    const b = g.bounds
    const hd = g.handle
    const ax = hd.includes('w') ? b.x + b.w : hd.includes('e') ? b.x : null
    const ay = hd.includes('n') ? b.y + b.h : hd.includes('s') ? b.y : null
    let sx = ax === null ? 1 : (w.x - ax) / ((hd.includes('w') ? b.x : b.x + b.w) - ax || 1)
    let sy = ay === null ? 1 : (w.y - ay) / ((hd.includes('n') ? b.y : b.y + b.h) - ay || 1)
    const corner = ax !== null && ay !== null
    const onlyText = [...g.orig.values()].every((o) => o.type === 'text')
    if ((keepRatio || onlyText) && corner) { const m = Math.max(Math.abs(sx), Math.abs(sy)); sx = m * Math.sign(sx || 1); sy = m * Math.sign(sy || 1) }
    const oxA = ax === null ? b.x : ax; const oyA = ay === null ? b.y : ay
    for (const [id, o] of g.orig) {
      const nx = oxA + (o.x - oxA) * sx; const ny = oyA + (o.y - oyA) * sy
      if (POINT_TYPES.has(o.type) && o.points) {
        const pts = o.points.map((v, i) => round(i % 2 === 0 ? v * sx : v * sy))
        editShape(id, { x: round(nx), y: round(ny), points: pts, w: round(Math.abs(o.lw * sx)), h: round(Math.abs(o.lh * sy)) })
      } else if (o.type === 'text') {
        const k = corner ? Math.abs(sy) : 1
        const font = Math.max(4, round(o.font * k, 10))
        const m = measureText(o.text, font)
        const x = sx < 0 ? nx - m.w : nx; const y = sy < 0 ? ny - m.h : ny
        editShape(id, { x: round(x), y: round(y), font, w: m.w, h: m.h })
      } else {
        let x = nx; let y = ny; let ww = o.w * sx; let hh = o.h * sy
        if (ww < 0) { x += ww; ww = -ww }
        if (hh < 0) { y += hh; hh = -hh }
        editShape(id, { x: round(x), y: round(y), w: round(Math.max(ww, 1)), h: round(Math.max(hh, 1)) })
      }
    }
  }

  function eraseAt (a, b) {
    const tol = 8 / cam.zoom
    const steps = Math.max(1, Math.ceil(Math.hypot(b.x - a.x, b.y - a.y) * cam.zoom / 4))
    for (let i = 0; i <= steps; i++) {
      const x = a.x + (b.x - a.x) * i / steps; const y = a.y + (b.y - a.y) * i / steps
      const list = getSorted()
      for (let j = list.length - 1; j >= 0; j--) {
        const s = list[j]
        if (!erasing.has(s.id) && hitShape(s, x, y, tol)) { erasing.add(s.id); contentVersion++ }
      }
    }
    requestRender()
  }

  function endGesture (e) {
    const g = gesture
    gesture = null
    if (!g) return
    switch (g.kind) {
      case 'stroke': {
        // final: simplify & normalise so (x, y) is the top-left of the points' box
        const pts = simplify(g.pts, 0.6 / cam.zoom)
        let minX = Infinity; let minY = Infinity; let maxX = -Infinity; let maxY = -Infinity
        for (let i = 0; i < pts.length; i += 2) { minX = Math.min(minX, pts[i]); maxX = Math.max(maxX, pts[i]); minY = Math.min(minY, pts[i + 1]); maxY = Math.max(maxY, pts[i + 1]) }
        const np = pts.map((v, i) => round(v - (i % 2 === 0 ? minX : minY)))
        editShape(g.id, { x: round(g.ox + minX), y: round(g.oy + minY), points: np, w: round(maxX - minX), h: round(maxY - minY) })
        endGestureCapture()
        break
      }
      case 'create': {
        if (!g.id) {
          // a click: drop a default-sized shape
          const d = g.type === 'line' || g.type === 'arrow' ? geometryFor(g.type, g.x0, g.y0, g.x0 + 160, g.y0) : geometryFor(g.type, g.x0 - 80, g.y0 - 50, g.x0 + 80, g.y0 + 50)
          g.id = createShape(g.type, d)
        }
        endGestureCapture()
        setTool('select')
        setSelection([g.id])
        break
      }
      case 'move':
      case 'resize':
        if (g.kind === 'resize' || g.started) endGestureCapture()
        break
      case 'marquee':
        updateSelectionUi()
        break
      case 'erase':
        if (erasing.size) deleteShapes([...erasing])
        erasing.clear()
        contentVersion++
        endGestureCapture()
        break
    }
    updateCursor()
    requestRender()
  }
  function cancelGesture () {
    if (gesture && gesture.kind !== 'pan' && gesture.kind !== 'marquee') endGesture()
    gesture = null
    erasing.clear()
  }

  const onUp = (e) => {
    pointers.delete(e.pointerId)
    if (pointers.size < 2) pinch = null
    if (gesture) endGesture(e)
  }
  canvas.addEventListener('pointerup', onUp)
  canvas.addEventListener('pointercancel', onUp)
  canvas.addEventListener('pointerleave', () => { if (!gesture) sendCursor(null) })

  canvas.addEventListener('dblclick', (e) => {
    if (tool !== 'select' || preview) return
    const { sx, sy } = localPoint(e)
    const w = toWorld(sx, sy)
    const hit = hitTest(w.x, w.y, 6, false) // inside a hollow box: a new text there
    if (hit && TEXT_TYPES.has(hit.type)) { setSelection([hit.id]); startEditing(hit.id, false) } else if (!hit) startNewText(w.x, w.y - style.font * LINE_HEIGHT / 2)
  })

  canvas.addEventListener('wheel', (e) => {
    e.preventDefault()
    const { sx, sy } = localPoint(e)
    if (e.ctrlKey || e.metaKey) {
      const f = Math.exp(-Math.max(-50, Math.min(50, e.deltaY)) * 0.01)
      zoomAt(f, sx, sy)
    } else {
      const k = e.deltaMode === 1 ? 16 : 1
      const dx = e.shiftKey && !e.deltaX ? e.deltaY : e.deltaX
      const dy = e.shiftKey && !e.deltaX ? 0 : e.deltaY
      cam = { ...cam, x: cam.x + dx * k / cam.zoom, y: cam.y + dy * k / cam.zoom }
      camChanged()
    }
  }, { passive: false })

  // Ramer–Douglas–Peucker on a flat points array
  function simplify (p, eps) {
    const n = p.length >> 1
    if (n <= 2) return p.slice()
    const keep = new Uint8Array(n)
    keep[0] = keep[n - 1] = 1
    const stack = [[0, n - 1]]
    while (stack.length) {
      const [a, b] = stack.pop()
      let maxD = 0; let idx = -1
      for (let i = a + 1; i < b; i++) {
        const d = distToSeg(p[2 * i], p[2 * i + 1], p[2 * a], p[2 * a + 1], p[2 * b], p[2 * b + 1])
        if (d > maxD) { maxD = d; idx = i }
      }
      if (maxD > eps && idx > 0) { keep[idx] = 1; stack.push([a, idx], [idx, b]) }
    }
    const out = []
    for (let i = 0; i < n; i++) if (keep[i]) out.push(p[2 * i], p[2 * i + 1])
    return out
  }

  // ---------------------------------------------------------------- text editing
  function startNewText (wx, wy) {
    if (editing) endEditing(true)
    const ta = makeTextarea()
    editing = { id: null, ta, isNew: true, pos: { x: round(wx), y: round(wy) }, type: 'text', font: style.font, stroke: style.stroke }
    ta.value = ''
    positionEditor()
    ta.focus()
  }
  function startEditing (id, isNew) {
    if (editing) endEditing(true)
    const s = cache.get(id)
    if (!s) return
    beginGestureCapture()
    const ta = makeTextarea()
    editing = { id, ta, isNew, type: s.type }
    ta.value = s.text || ''
    positionEditor()
    requestRender()
    ta.focus()
    ta.setSelectionRange(ta.value.length, ta.value.length)
  }
  function makeTextarea () {
    contentVersion++
    const ta = h('textarea', { class: 'text-editor', spellcheck: 'false', 'aria-label': 'Edit text', 'data-testid': 'text-editor', rows: '1' })
    ta.addEventListener('input', onEditorInput)
    ta.addEventListener('keydown', (e) => {
      e.stopPropagation()
      if (e.key === 'Escape' || (e.key === 'Enter' && (e.ctrlKey || e.metaKey))) { e.preventDefault(); endEditing(true); canvas.focus() }
    })
    ta.addEventListener('blur', () => { if (editing && editing.ta === ta) endEditing(true) })
    editorLayer.replaceChildren(ta)
    return ta
  }
  function onEditorInput () {
    const ed = editing
    if (!ed) return
    const text = ed.ta.value
    if (ed.type === 'text') {
      const font = ed.id ? cache.get(ed.id)?.font || style.font : ed.font
      const m = measureText(text, font)
      if (!ed.id) {
        if (!text) return
        beginGestureCapture()
        ed.id = createShape('text', { x: ed.pos.x, y: ed.pos.y, text, font, w: m.w, h: m.h, fill: 'transparent', stroke: ed.stroke })
        setSelection([ed.id])
      } else editShape(ed.id, { text, w: m.w, h: m.h })
    } else {
      const s = cache.get(ed.id)
      if (!s) return
      // grow the sticky to fit its text
      const lines = wrapForSticky(text, s)
      const need = Math.ceil(lines * s.font * LINE_HEIGHT + STICKY_PAD * 2)
      editShape(ed.id, need > s.h ? { text, h: need } : { text })
    }
    positionEditor()
  }
  function wrapForSticky (text, s) {
    const tmp = { ...s, text, _wrapKey: null }
    return stickyLinesCount(tmp)
  }
  function stickyLinesCount (s) {
    const c = document.createElement('canvas').getContext('2d')
    c.font = fontString(s.font)
    const maxW = s.w - STICKY_PAD * 2
    let n = 0
    for (const para of s.text.split('\n')) {
      const words = para.split(/(\s+)/); let line = ''; n++
      for (const w of words) { if (line && c.measureText(line + w).width > maxW && w.trim()) { n++; line = w.trimStart() } else line += w }
    }
    return n
  }
  function positionEditor () {
    const ed = editing
    if (!ed) return
    const z = cam.zoom
    const s = ed.id ? cache.get(ed.id) : null
    const font = s ? s.font : ed.font
    const ta = ed.ta
    ta.style.font = fontString(font * z)
    ta.style.lineHeight = String(LINE_HEIGHT)
    if (ed.type === 'sticky' && s) {
      const p = toScreen(s.x, s.y)
      Object.assign(ta.style, { left: p.x + 'px', top: p.y + 'px', width: s.w * z + 'px', height: s.h * z + 'px', padding: STICKY_PAD * z + 'px', color: s.stroke, textAlign: 'left' })
      ta.classList.add('sticky')
    } else {
      const x = s ? s.x : ed.pos.x; const y = s ? s.y : ed.pos.y
      const p = toScreen(x, y)
      const m = measureText(ta.value || 'M', font)
      Object.assign(ta.style, { left: p.x + 'px', top: p.y + 'px', width: (m.w + font) * z + 'px', height: m.h * z + 'px', padding: '0', color: s ? s.stroke : ed.stroke })
    }
  }
  function endEditing (commit) {
    const ed = editing
    if (!ed) return
    editing = null
    contentVersion++
    ed.ta.remove()
    if (ed.id) {
      const s = cache.get(ed.id)
      if (s && s.type === 'text' && !(s.text || '').trim()) { deleteShapes([ed.id]); selection.delete(ed.id) }
    }
    endGestureCapture()
    if (tool === 'text') {
      setTool('select')
      if (ed.id && cache.has(ed.id)) setSelection([ed.id])
    }
    updateSelectionUi()
    requestRender()
  }

  // ---------------------------------------------------------------- commands
  function deleteSelection () {
    if (!selection.size) return
    const ids = [...selection]
    setSelection([])
    deleteShapes(ids)
  }
  function duplicateSelection () {
    if (!selection.size) return
    flush()
    const src = getSorted().filter((s) => selection.has(s.id))
    const keys = keysBetween(topZ(), null, src.length)
    const ids = []
    transact(() => {
      src.forEach((s, i) => {
        const m = shapesY.get(s.id)
        const f = {}
        for (const k of FIELDS) if (m.has(k)) f[k] = m.get(k)
        const id = randomId()
        insertShape(shapesY, { ...f, id, x: round(s.x + 16), y: round(s.y + 16), z: keys[i], createdBy: userName, createdAt: Date.now() })
        ids.push(id)
      })
    })
    setSelection(ids)
  }
  function reorder (where) {
    if (!selection.size) return
    flush()
    const list = getSorted()
    const sel = list.filter((s) => selection.has(s.id))
    const n = sel.length
    let keys = null
    if (where === 'front') keys = keysBetween(list[list.length - 1].z, null, n)
    else if (where === 'back') keys = keysBetween(null, list[0].z, n)
    else {
      const b = selectionBounds(selection)
      const overl = (s) => !(s.bbox.x > b.x + b.w || s.bbox.y > b.y + b.h || s.bbox.x + s.bbox.w < b.x || s.bbox.y + s.bbox.h < b.y)
      if (where === 'forward') {
        const top = list.findLastIndex((s) => selection.has(s.id))
        const j = list.findIndex((s, i) => i > top && !selection.has(s.id) && overl(s))
        if (j < 0) return
        keys = keysBetween(list[j].z, list[j + 1] ? list[j + 1].z : null, n)
      } else {
        const bot = list.findIndex((s) => selection.has(s.id))
        const j = list.findLastIndex((s, i) => i < bot && !selection.has(s.id) && overl(s))
        if (j < 0) return
        keys = keysBetween(j > 0 ? list[j - 1].z : null, list[j].z, n)
      }
    }
    transact(() => sel.forEach((s, i) => shapesY.get(s.id)?.set('z', keys[i])))
  }
  function applyStyle (key, value) {
    style[key] = value
    if (selection.size) {
      for (const id of selection) {
        const s = cache.get(id)
        if (!s) continue
        if (key === 'fill' && !(FILLABLE.has(s.type) && (s.type !== 'line' || isClosed(s.points)))) continue
        if (key === 'font' && !TEXT_TYPES.has(s.type)) continue
        if (key === 'fill' && s.type === 'sticky' && value === 'transparent') continue
        if (key === 'font' && s.type === 'text') {
          const m = measureText(s.text, value)
          editShape(id, { font: value, w: m.w, h: m.h })
        } else editShape(id, { [key]: value })
      }
      flush()
      undo.stopCapturing()
    }
    renderStylePanel()
  }

  // ---------------------------------------------------------------- style panel
  function renderStylePanel () {
    const sel = [...selection].map((id) => cache.get(id)).filter(Boolean)
    const types = new Set(sel.length ? sel.map((s) => s.type) : (['select', 'eraser'].includes(tool) ? [] : [tool === 'pen' ? 'stroke' : tool]))
    if (!types.size || preview) { stylePanel.hidden = true; styleToggle.hidden = true; return }
    stylePanel.hidden = false
    styleToggle.hidden = false
    const first = sel[0]
    const cur = (k) => (first ? first[k] : style[k])
    const showFill = [...types].some((t) => FILLABLE.has(t) && t !== 'line') || sel.some((s) => s.type === 'line' && isClosed(s.points))
    const showWidth = [...types].some((t) => !TEXT_TYPES.has(t))
    const showFont = [...types].some((t) => TEXT_TYPES.has(t))
    const sw = (list, key, testid) => h('div', { class: 'swatches', role: 'radiogroup', 'aria-label': testid },
      list.map(([v, name]) => h('button', {
        class: 'swatch' + (cur(key) === v ? ' active' : '') + (v === 'transparent' ? ' none' : ''),
        style: { '--c': v },
        role: 'radio',
        'aria-checked': String(cur(key) === v),
        'aria-label': `${testid}: ${name}`,
        'data-tip': name,
        'data-testid': `${key}-${name.toLowerCase()}`,
        onclick: () => applyStyle(key, v)
      })))
    const children = [
      h('div', { class: 'panel-label' }, types.has('text') || types.has('sticky') ? 'Text colour' : 'Stroke'),
      sw(STROKES, 'stroke', 'Stroke')
    ]
    if (showFill) children.push(h('div', { class: 'panel-label' }, 'Fill'), sw(FILLS, 'fill', 'Fill'))
    if (showWidth) {
      children.push(h('div', { class: 'panel-label' }, 'Stroke width'), h('div', { class: 'seg' },
        WIDTHS.map(([v, name]) => h('button', {
          class: 'seg-btn' + (cur('width') === v ? ' active' : ''),
          'aria-label': `Stroke width: ${name}`,
          'aria-pressed': String(cur('width') === v),
          'data-tip': name,
          'data-testid': `width-${name.toLowerCase()}`,
          html: `<svg width="22" height="22" viewBox="0 0 22 22" aria-hidden="true"><line x1="4" y1="11" x2="18" y2="11" stroke="currentColor" stroke-width="${v / 1.6 + 0.5}" stroke-linecap="round"/></svg>`,
          onclick: () => applyStyle('width', v)
        }))))
    }
    if (showFont) {
      children.push(h('div', { class: 'panel-label' }, 'Font size'), h('div', { class: 'seg' },
        FONTS.map(([v, name]) => h('button', {
          class: 'seg-btn' + (cur('font') === v ? ' active' : ''),
          'aria-label': `Font size: ${name}`,
          'aria-pressed': String(cur('font') === v),
          'data-testid': `font-${name.toLowerCase()}`,
          onclick: () => applyStyle('font', v)
        }, name))))
    }
    children.push(h('div', { class: 'panel-label' }, 'Opacity'), h('input', {
      class: 'range', type: 'range', min: '10', max: '100', step: '5', value: String(Math.round((cur('opacity') ?? 1) * 100)), 'aria-label': 'Opacity',
      onchange: (e) => applyStyle('opacity', Number(e.target.value) / 100)
    }))
    if (sel.length) {
      // native tooltips here: the panel scrolls, so drawn ones would be clipped (they are hidden)
      const act = (ic, label, tip, testid, fn, extra = '') => h('button', { class: 'icon-btn' + extra, 'aria-label': label, 'data-tip': tip, title: tip, 'data-testid': testid, html: icon(ic, 18), onclick: fn })
      children.push(h('div', { class: 'panel-label' }, 'Layers'), h('div', { class: 'actions' },
        act('back', 'Send to back', 'Send to back — Ctrl+Shift+[', 'send-back', () => reorder('back')),
        act('backward', 'Send backward', 'Send backward — Ctrl+[', 'send-backward', () => reorder('backward')),
        act('forward', 'Bring forward', 'Bring forward — Ctrl+]', 'bring-forward', () => reorder('forward')),
        act('front', 'Bring to front', 'Bring to front — Ctrl+Shift+]', 'bring-front', () => reorder('front'))
      ), h('div', { class: 'panel-label' }, 'Actions'), h('div', { class: 'actions' },
        act('copy', 'Duplicate', 'Duplicate — Ctrl+D', 'duplicate', () => duplicateSelection()),
        act('trash', 'Delete', 'Delete — Del', 'delete', () => deleteSelection(), ' danger')
      ))
    }
    stylePanel.replaceChildren(...children)
    styleToggle.style.setProperty('--c', cur('stroke') || '#1e1e2e')
    styleToggle.style.setProperty('--f', showFill && cur('fill') && cur('fill') !== 'transparent' ? cur('fill') : '#ffffff')
  }

  // ---------------------------------------------------------------- keyboard
  function isTyping (e) {
    const t = e.target
    return t && ((t.tagName === 'INPUT' && t.type !== 'range') || t.tagName === 'TEXTAREA' || t.isContentEditable)
  }
  const onKeyDown = (e) => {
    if (isTyping(e)) return
    // a focused slider keeps its own keys (arrows, Home/End, Page Up/Down)
    if (e.target && e.target.type === 'range' && /^(Arrow|Home|End|Page)/.test(e.key)) return
    const mod = e.ctrlKey || e.metaKey
    const k = e.key
    // Escape closes an open menu first (and only that)
    if (k === 'Escape' && (!menu.hidden || !peopleMenu.hidden)) {
      e.preventDefault()
      if (!menu.hidden) { closeMenu(); menuBtn.focus() }
      if (!peopleMenu.hidden) { closePeopleMenu(); presence.querySelector('.avatar.more')?.focus() }
      return
    }
    if (k === ' ' && !spaceDown) { spaceDown = true; updateCursor(); e.preventDefault(); return }
    if (!mod && !e.altKey && (k === 'h' || k === 'H')) { e.preventDefault(); hist.toggle(); return }
    if (preview) {
      // read-only: only the camera moves; Escape goes back to the live board
      if (k === 'Escape') { e.preventDefault(); hist.goLive(); return }
      if (mod && (k === '=' || k === '+')) { e.preventDefault(); zoomBy(1.25) } else if (mod && k === '-') { e.preventDefault(); zoomBy(0.8) } else if (mod && k === '0') { e.preventDefault(); zoomTo(1) } else if (e.shiftKey && (k === '!' || e.code === 'Digit1')) { e.preventDefault(); zoomToFit() } else if (mod && 'zZyYdDaA'.includes(k)) e.preventDefault()
      return
    }
    if (mod && (k === 'z' || k === 'Z')) { e.preventDefault(); if (e.shiftKey) doRedo(); else doUndo(); return }
    if (mod && (k === 'y' || k === 'Y')) { e.preventDefault(); doRedo(); return }
    if (mod && (k === 'd' || k === 'D')) { e.preventDefault(); duplicateSelection(); return }
    if (mod && (k === 'a' || k === 'A')) { e.preventDefault(); setTool('select'); setSelection(getSorted().map((s) => s.id)); return }
    if (mod && (k === ']' || k === '}')) { e.preventDefault(); reorder(e.shiftKey ? 'front' : 'forward'); return }
    if (mod && (k === '[' || k === '{')) { e.preventDefault(); reorder(e.shiftKey ? 'back' : 'backward'); return }
    if (mod && (k === '=' || k === '+')) { e.preventDefault(); zoomBy(1.25); return }
    if (mod && k === '-') { e.preventDefault(); zoomBy(0.8); return }
    if (mod && k === '0') { e.preventDefault(); zoomTo(1); return }
    if (mod) return
    if (e.shiftKey && (k === '!' || e.code === 'Digit1')) { e.preventDefault(); zoomToFit(); return }
    if (k === 'Delete' || k === 'Backspace') { e.preventDefault(); deleteSelection(); return }
    if (k === 'Escape') { setSelection([]); if (tool !== 'select') setTool('select'); return }
    if (k === 'Enter' && selection.size === 1) {
      const s = cache.get([...selection][0])
      if (s && TEXT_TYPES.has(s.type)) { e.preventDefault(); startEditing(s.id, false) }
      return
    }
    if (k.startsWith('Arrow') && selection.size) {
      e.preventDefault()
      const d = e.shiftKey ? 10 : 1
      const dx = k === 'ArrowLeft' ? -d : k === 'ArrowRight' ? d : 0
      const dy = k === 'ArrowUp' ? -d : k === 'ArrowDown' ? d : 0
      for (const id of selection) { const s = cache.get(id); if (s) editShape(id, { x: round(s.x + dx), y: round(s.y + dy) }) }
      return
    }
    const t = TOOLS.find((x) => x.key.toLowerCase() === k.toLowerCase())
    if (t && !e.altKey) { e.preventDefault(); setTool(t.id) }
  }
  const onKeyUp = (e) => { if (e.key === ' ') { spaceDown = false; updateCursor() } }
  addEventListener('keydown', onKeyDown)
  addEventListener('keyup', onKeyUp)
  addEventListener('blur', () => { spaceDown = false })

  // ---------------------------------------------------------------- presence
  let lastCursorSent = 0
  let cursorTimer = 0
  let pendingCursor
  function sendCursor (w) {
    pendingCursor = w ? { x: round(w.x, 10), y: round(w.y, 10) } : null
    const now = performance.now()
    const go = () => { cursorTimer = 0; lastCursorSent = performance.now(); awareness.setLocalStateField('cursor', pendingCursor) }
    if (now - lastCursorSent >= CURSOR_MS) go()
    else if (!cursorTimer) cursorTimer = setTimeout(go, CURSOR_MS - (now - lastCursorSent))
  }
  const cursorEls = new Map()
  function positionCursors () {
    const W = canvas.clientWidth; const H = canvas.clientHeight
    const seen = new Set()
    awareness.getStates().forEach((st, clientId) => {
      if (clientId === doc.clientID || !st || !st.user || !st.cursor) return
      seen.add(clientId)
      let el = cursorEls.get(clientId)
      if (!el) {
        el = h('div', { class: 'remote-cursor', 'data-testid': 'remote-cursor' },
          h('span', { html: '<svg width="18" height="20" viewBox="0 0 18 20"><path d="M1.5 1.5 L16 9.2 L9.3 10.6 L6.2 17.5 Z" fill="currentColor" stroke="#fff" stroke-width="1.6" stroke-linejoin="round"/></svg>' }),
          h('span', { class: 'cursor-name' }))
        cursorsLayer.append(el)
        cursorEls.set(clientId, el)
      }
      const c = st.user.color || '#4f5bd5'
      el.style.color = c
      el.lastChild.style.background = c
      if (el.lastChild.textContent !== st.user.name) el.lastChild.textContent = String(st.user.name || 'Anonymous')
      el.dataset.name = String(st.user.name || '')
      const p = toScreen(st.cursor.x, st.cursor.y)
      el.hidden = p.x < -20 || p.y < -20 || p.x > W + 20 || p.y > H + 20
      el.style.transform = `translate(${p.x}px, ${p.y}px)`
    })
    for (const [id, el] of cursorEls) if (!seen.has(id)) { el.remove(); cursorEls.delete(id) }
  }
  /** Everyone here (me first, then by name). */
  function people () {
    const list = []
    awareness.getStates().forEach((st, clientId) => {
      if (!st || !st.user) return
      list.push({ clientId, me: clientId === doc.clientID, name: String(st.user.name || 'Anonymous'), color: st.user.color })
    })
    return list.sort((a, b) => (a.me ? -1 : b.me ? 1 : a.name.localeCompare(b.name)))
  }
  /** An avatar's click: centre the view on that person's cursor (your own: change your name). */
  function jumpTo (clientId) {
    if (clientId === doc.clientID) { askName(true); return }
    const st = awareness.getStates().get(clientId)
    if (!st || !st.cursor) { toast(st && st.user ? `${st.user.name} has no cursor on the board right now` : 'They left the board'); return }
    cam = { ...cam, x: st.cursor.x - canvas.clientWidth / 2 / cam.zoom, y: st.cursor.y - canvas.clientHeight / 2 / cam.zoom }
    camChanged()
  }
  let presenceKey = ''
  let maxAvatars = 5 // set by layoutTopbar: the rest collapse into "+N"
  /** The avatars; rebuilt only when who is here changes (not on every cursor move). */
  function renderPresence () {
    const list = people()
    const key = maxAvatars + '|' + list.map((p) => `${p.clientId}:${p.name}:${p.color}`).join('|')
    if (key === presenceKey) return false
    presenceKey = key
    // "+N" takes the last slot, so at most maxAvatars circles
    const shown = list.length > maxAvatars ? list.slice(0, Math.max(1, maxAvatars - 1)) : list
    const rest = list.slice(shown.length)
    const els = shown.map((p) => h('button', {
      class: 'avatar' + (p.me ? ' me' : ''),
      style: { background: p.color || '#868e96' },
      'data-testid': 'presence-avatar',
      'data-name': p.name,
      'aria-label': p.me ? `${p.name} (you) — change your name` : `${p.name} — jump to their cursor`,
      'data-tip': p.me ? `${p.name} (you)` : p.name,
      onclick: () => jumpTo(p.clientId)
    }, initials(p.name)))
    if (rest.length) {
      els.push(h('button', {
        class: 'avatar more',
        'data-testid': 'presence-more',
        'aria-haspopup': 'menu',
        'aria-expanded': String(!peopleMenu.hidden),
        'aria-label': `${rest.length} more: ${rest.map((p) => p.name).join(', ')}`,
        'data-tip': `${rest.length} more`,
        onclick: (e) => { e.stopPropagation(); togglePeopleMenu() }
      }, `+${rest.length}`))
    }
    presence.replaceChildren(...els)
    presence.dataset.count = String(list.length)
    presence.dataset.shown = String(shown.length)
    if (!peopleMenu.hidden) renderPeopleMenu(list)
    return true
  }
  /** The list behind "+N": everyone, with a click jumping to their cursor. */
  function renderPeopleMenu (list = people()) {
    peopleMenu.replaceChildren(h('div', { class: 'menu-head' }, `${list.length} ${list.length === 1 ? 'person' : 'people'} on this board`),
      ...list.map((p) => h('button', {
        class: 'menu-item person',
        role: 'menuitem',
        'data-testid': 'people-menu-item',
        onclick: () => { closePeopleMenu(); jumpTo(p.clientId) }
      }, h('span', { class: 'avatar sm', style: { background: p.color || '#868e96' } }, initials(p.name)),
      h('span', { class: 'person-name' }, p.name), p.me ? h('span', { class: 'person-you' }, 'you') : null)))
  }
  function togglePeopleMenu () {
    if (!peopleMenu.hidden) { closePeopleMenu(); return }
    closeMenu()
    renderPeopleMenu()
    peopleMenu.hidden = false
    presence.querySelector('.avatar.more')?.setAttribute('aria-expanded', 'true')
  }
  function closePeopleMenu () {
    if (peopleMenu.hidden) return
    peopleMenu.hidden = true
    presence.querySelector('.avatar.more')?.setAttribute('aria-expanded', 'false')
  }
  awareness.on('change', () => { if (renderPresence()) requestLayout(); requestRender() })

  // ---------------------------------------------------------------- top bar layout
  // Title card (left), toolbar or preview banner (centre), people/status/share (right): nothing
  // may overlap at any width, with any number of people and any connection status. So the
  // layout is measured, not guessed from breakpoints: the first of these states in which the
  // cards keep the bar's gap between them wins — the centre in the bar with the right card ever
  // more compact (fewer avatars behind "+N", then status and Share as icons), else the centre
  // out of the bar (the toolbar at the bottom, the banner under the bar) and the right card down
  // to one avatar. The title field shrinks first (CSS), down to its min-width.
  const TOPBAR_STATES = [
    { below: false, avatars: 5, labels: true },
    { below: false, avatars: 3, labels: true },
    { below: false, avatars: 3, labels: false },
    { below: true, avatars: 5, labels: true },
    { below: true, avatars: 3, labels: true },
    { below: true, avatars: 3, labels: false },
    { below: true, avatars: 2, labels: false },
    { below: true, avatars: 1, labels: false }
  ]
  const PHONE = matchMedia('(max-width: 560px)') // phones: the toolbar is always at the bottom
  function applyTopbarState (st) {
    boardEl.classList.toggle('center-below', st.below)
    boardEl.classList.toggle('compact-chrome', !st.labels)
    maxAvatars = st.avatars
    renderPresence()
  }
  function topbarFits (below) {
    if (titleCard.scrollWidth > titleCard.clientWidth + 1) return false // the title card is squeezed
    const gap = (parseFloat(getComputedStyle(topbar).columnGap) || 12) - 0.5 // the bar's own gap, kept
    const t = titleCard.getBoundingClientRect()
    const r = rightCard.getBoundingClientRect()
    const bar = topbar.getBoundingClientRect()
    if (r.right > bar.right + 0.5 || t.left < bar.left - 0.5) return false
    if (below) return t.right + gap <= r.left
    const c = (preview ? previewBanner : toolbar).getBoundingClientRect()
    return t.right + gap <= c.left && c.right + gap <= r.left
  }
  function layoutTopbar () {
    layoutQueued = false
    if (!topbar.isConnected || !topbar.clientWidth) return
    const states = PHONE.matches ? TOPBAR_STATES.filter((s) => s.below) : TOPBAR_STATES
    let st
    for (st of states) {
      applyTopbarState(st)
      if (topbarFits(st.below)) break
    }
    boardEl.dataset.topbar = `${st.below ? 'below' : 'top'}:${st.avatars}${st.labels ? '' : ':compact'}`
  }
  function requestLayout () {
    if (layoutQueued) return
    layoutQueued = true
    requestAnimationFrame(() => { if (layoutQueued) layoutTopbar() })
  }
  new ResizeObserver(() => requestLayout()).observe(topbar)
  layoutTopbar()

  async function askName (force) {
    if (!force && storedName()) return
    const v = await promptDialog({
      title: force ? 'Change your name' : 'Welcome to Inkstream',
      hint: force ? '' : 'Pick a name so collaborators know who is drawing. It is stored on this device only.',
      label: 'Your name',
      value: userName,
      confirm: force ? 'Save' : 'Start drawing'
    })
    if (v) applyName(v.slice(0, 40))
  }
  /**
   * The server takes the author of every update (version provenance) from the connection's
   * `?user=` and, newer servers, from the awareness `user.name`: change both, and reconnect so
   * the next versions carry the new name.
   */
  function applyName (name) {
    userName = name
    setName(name)
    awareness.setLocalStateField('user', { name, color })
    if (provider.params.user === name) return
    provider.params.user = name
    if (provider.shouldConnect && provider.ws) {
      flush()
      quietReconnectUntil = performance.now() + 2000
      provider.disconnect()
      provider.connect()
    }
  }
  const welcome = storedName() ? Promise.resolve() : askName(false)
  if (isNewBoard) {
    welcome.then(() => setTimeout(() => {
      if (document.activeElement && document.activeElement !== document.body && document.activeElement !== canvas) return
      titleInput.focus()
      titleInput.select()
    }, 50))
  }

  // ---------------------------------------------------------------- menu
  menuBtn.addEventListener('click', (e) => { e.stopPropagation(); closePeopleMenu(); menu.hidden = !menu.hidden; menuBtn.setAttribute('aria-expanded', String(!menu.hidden)) })
  function closeMenu () { menu.hidden = true; menuBtn.setAttribute('aria-expanded', 'false') }
  document.addEventListener('click', (e) => {
    if (!menu.contains(e.target) && e.target !== menuBtn) closeMenu()
    if (!peopleMenu.contains(e.target)) closePeopleMenu()
  })

  async function copyLink () {
    const url = `${location.origin}/b/${encodeURIComponent(boardId)}`
    try { await navigator.clipboard.writeText(url); toast('Link copied — anyone with it can join this board', { kind: 'success' }) } catch { toast(url) }
  }

  // ---------------------------------------------------------------- import / export
  /** `<title or board id>[-v<version>]`: characters file systems refuse are dropped, others kept. */
  function fileBase () {
    const raw = String(metaY.get('title') || '').replace(/[\\/:*?"<>|\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim().replace(/^\.+/, '').slice(0, 80).trim()
    return (raw || boardId) + (preview ? `-v${preview.version}` : '')
  }
  function exportableShapes () {
    flush()
    return getSorted()
  }
  function exportSvgFile () {
    const list = exportableShapes()
    if (!list.length) { toast('The board is empty — nothing to export'); return }
    download(`${fileBase()}.svg`, new Blob([exportSvg(list, metaY.get('title') || 'Inkstream board')], { type: 'image/svg+xml' }))
  }
  function exportExcalidrawFile () {
    const list = exportableShapes()
    download(`${fileBase()}.excalidraw`, new Blob([JSON.stringify(exportExcalidraw(list), null, 2)], { type: 'application/json' }))
  }
  function exportPng () {
    const list = exportableShapes()
    if (!list.length) { toast('The board is empty — nothing to export'); return }
    const b = unionBounds(list)
    const pad = 32
    const bounds = { x: b.x - pad, y: b.y - pad, w: b.w + 2 * pad, h: b.h + 2 * pad }
    const scale = Math.min(2, 8192 / bounds.w, 8192 / bounds.h)
    const c = document.createElement('canvas')
    c.width = Math.ceil(bounds.w * scale); c.height = Math.ceil(bounds.h * scale)
    renderToCanvas(c, list, bounds, scale)
    c.toBlob((blob) => blob && download(`${fileBase()}.png`, blob), 'image/png')
  }
  /** The toast after an import: what was imported, what was skipped and why (the first few reasons). */
  function importReport (result, fileName) {
    const sum = importSummary(result, fileName)
    const all = importSummary(result, fileName, Infinity) // every reason the import kept (the first 20)
    const list = h('ul', { class: 'toast-reasons' }, sum.reasons.map((line) => h('li', {}, line)))
    const more = h('div', { class: 'toast-more' }, `…and ${sum.more} more`,
      all.reasons.length > sum.reasons.length
        ? h('button', {
          class: 'toast-link',
          type: 'button',
          'data-testid': 'import-show-all',
          onclick: () => {
            keepToast(t)
            list.replaceChildren(...all.reasons.map((line) => h('li', {}, line)))
            more.replaceChildren(...(all.more > 0 ? [`…and ${all.more} more not listed`] : []))
            more.hidden = all.more <= 0
          }
        }, 'Show all')
        : null)
    const detail = sum.notes.length
      ? h('div', { class: 'toast-detail' },
        sum.notes.map((line) => h('div', {}, line)),
        sum.reasons.length ? list : null,
        sum.more > 0 ? more : null)
      : null
    const t = toast(h('div', {}, h('div', { class: 'toast-title' }, sum.title), detail),
      { kind: sum.kind, timeout: result.invalid.length ? 15000 : 7000, closable: !!detail })
    t.dataset.testid = 'import-report'
    t.dataset.imported = String(result.shapes.length)
    t.dataset.skipped = JSON.stringify(result.skipped)
    t.dataset.invalid = JSON.stringify(result.invalid)
    window.__inkstream.lastImport = { imported: result.shapes.length, skipped: result.skipped, deleted: result.deleted, invalid: result.invalid }
    return t
  }
  async function importFile (file) {
    if (preview) { toast('You are viewing an old version — go back to live to import', { kind: 'warn' }); return }
    try {
      const text = await file.text()
      const result = importExcalidraw(text)
      const { shapes } = result
      if (!shapes.length) { importReport(result, file.name); return }
      flush()
      const fakes = shapes.map((f, i) => finishShape({ ...f, id: 'tmp' + i, points: f.points || null, text: f.text || '' }))
      const ib = unionBounds(fakes)
      const boxOk = [ib.x, ib.y, ib.w, ib.h].every(Number.isFinite)
      let dx = 0; let dy = 0
      if (cache.size && boxOk) {
        const v = visibleWorld()
        dx = round(v.x + v.w / 2 - (ib.x + ib.w / 2)); dy = round(v.y + v.h / 2 - (ib.y + ib.h / 2))
        // never move a shape out of the numbers (a scene far out is imported where it is)
        if (!shapes.every((f) => Number.isFinite(f.x + dx) && Number.isFinite(f.y + dy))) { dx = 0; dy = 0 }
      }
      const keys = keysBetween(topZ(), null, shapes.length)
      const ids = []
      undo.stopCapturing()
      transact(() => {
        shapes.forEach((f, i) => {
          const at = dx || dy ? { x: roundCoord(f.x + dx), y: roundCoord(f.y + dy) } : {}
          const fields = newShapeFields(f.type, { ...f, ...at }, style, userName)
          const id = randomId()
          insertShape(shapesY, { ...fields, id, z: keys[i] })
          ids.push(id)
        })
      })
      undo.stopCapturing()
      setTool('select')
      setSelection(ids)
      if (boxOk) zoomToBounds({ x: ib.x + dx, y: ib.y + dy, w: ib.w, h: ib.h }, 1)
      importReport(result, file.name)
    } catch (err) {
      toast(`Could not import ${file.name}: ${err.message}`, { kind: 'error' })
    }
  }
  fileInput.addEventListener('change', () => { const f = fileInput.files[0]; if (f) importFile(f); fileInput.value = '' })
  let dragDepth = 0
  const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes('Files')
  addEventListener('dragenter', (e) => { if (hasFiles(e)) { dragDepth++; dropOverlay.hidden = false } })
  addEventListener('dragleave', () => { dragDepth = Math.max(0, dragDepth - 1); if (!dragDepth) dropOverlay.hidden = true })
  addEventListener('dragover', (e) => { if (hasFiles(e)) e.preventDefault() })
  addEventListener('drop', (e) => {
    if (!hasFiles(e)) return
    e.preventDefault()
    dragDepth = 0
    dropOverlay.hidden = true
    const f = e.dataTransfer.files[0]
    if (f) importFile(f)
  })

  // ---------------------------------------------------------------- lifecycle
  addEventListener('resize', requestRender)
  addEventListener('beforeunload', () => { flush(); awareness.setLocalStateField('cursor', null) })
  document.addEventListener('visibilitychange', () => { if (document.hidden) flush() })

  // Hooks for tests, benchmarks and debugging (read-mostly).
  window.__inkstream = {
    Y,
    doc,
    provider,
    awareness,
    undoManager: undo,
    boardId,
    stats,
    snapshot: () => { flush(); return snapshotShapes(doc) },
    shapeCount: () => cache.size,
    get camera () { return { ...cam } },
    setCamera: (c) => { cam = { ...cam, ...c }; camChanged() },
    zoomToFit: () => zoomToFit(false),
    importFile,
    history: hist,
    get preview () { return preview ? preview.version : null },
    get updatesSent () { return updatesSent }
  }
  let updatesSent = 0
  doc.on('update', (u, origin) => {
    if (origin === LOCAL) { updatesSent++; rememberOnce() }
    if (origin !== idb) hist.changed()
  })

  try {
    const forked = JSON.parse(sessionStorage.getItem('inkstream:forked:' + boardId) || 'null')
    if (forked) {
      sessionStorage.removeItem('inkstream:forked:' + boardId)
      toast(`New board forked from “${forked.from}” at version ${forked.version}. The original is unchanged.`, { kind: 'success', timeout: 6000 })
    }
  } catch {}

  setTool('pen')
  camChanged()
  requestRender()
  setTimeout(() => { if (!firstContentDone && (synced || cache.size)) onFirstContent() }, 0)
  idb.whenSynced.then(() => { if (cache.size) onFirstContent(); else setTimeout(() => { if (!firstContentDone) { firstContentDone = true; requestRender() } }, 1500) })
}
