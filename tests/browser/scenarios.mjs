// Real-browser scenarios for the Inkstream web app, against a running `inkstream serve`.
//
//   node scenarios.mjs http://127.0.0.1:8000 [scenario ...]
//
// Prints one JSON object on the last line: {"results": {name: {ok, error?, ...facts}}}.
// tests/browser/test_app.py starts the server, runs this and asserts on the facts.
import { readFileSync } from 'node:fs'
import * as Y from 'yjs'
import { join } from 'node:path'
import {
  launch, userContext, watchErrors, openBoard, drag, snapshot, apiBoard, waitFor, randomBoardId,
  ARTIFACTS, HERE
} from './lib.mjs'

const base = process.argv[2]
if (!base) { console.error('usage: node scenarios.mjs BASE_URL [scenario ...]'); process.exit(2) }
const only = process.argv.slice(3)

const FIXTURE = join(HERE, 'fixtures', 'sprint-planning.excalidraw')
const INVALID_FIXTURE = join(HERE, 'fixtures', 'invalid-elements.excalidraw')
const shot = (page, name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) })
const byType = (shapes) => shapes.reduce((m, s) => { m[s.type] = (m[s.type] || 0) + 1; return m }, {})
const canon = (shapes) => JSON.stringify(shapes.map((s) => Object.fromEntries(Object.entries(s).sort())).sort((a, b) => (a.id < b.id ? -1 : 1)))

/** Count non-background pixels of the board canvas inside a screen rectangle. */
async function inkPixels (page, x, y, w, h) {
  return page.evaluate(([x, y, w, h]) => {
    const c = document.querySelector('[data-testid="board-canvas"]')
    const dpr = c.width / c.clientWidth
    // read through a scratch canvas made for reading: reading the board's own context again and
    // again is what Chrome warns about (and the scenarios fail on that warning from the app)
    const sx = Math.round(x * dpr); const sy = Math.round(y * dpr)
    const sw = Math.max(1, Math.round(w * dpr)); const sh = Math.max(1, Math.round(h * dpr))
    const r = document.createElement('canvas'); r.width = sw; r.height = sh
    const rc = r.getContext('2d', { willReadFrequently: true })
    rc.drawImage(c, sx, sy, sw, sh, 0, 0, sw, sh)
    const d = rc.getImageData(0, 0, sw, sh).data
    let n = 0
    for (let i = 0; i < d.length; i += 4) if (d[i] < 120 && d[i + 1] < 120 && d[i + 2] < 140) n++
    return n
  }, [x, y, w, h])
}

/** In-page: a pen stroke of `n` pointer moves 4 ms apart; counts the Yjs updates it sent. */
export async function fastStroke (n) {
  const c = document.querySelector('[data-testid="board-canvas"]')
  const r = c.getBoundingClientRect()
  const ev = (type, i) => new PointerEvent(type, { pointerId: 7, pointerType: 'mouse', isPrimary: true, button: 0, buttons: type === 'pointerup' ? 0 : 1, clientX: r.left + 200 + i * 2, clientY: r.top + 500 + Math.sin(i / 10) * 60, bubbles: true, cancelable: true })
  const before = window.__inkstream.updatesSent
  const t0 = performance.now()
  c.dispatchEvent(ev('pointerdown', 0))
  for (let i = 1; i <= n; i++) {
    c.dispatchEvent(ev('pointermove', i))
    await new Promise((resolve) => setTimeout(resolve, 4))
  }
  c.dispatchEvent(ev('pointerup', n))
  const ms = performance.now() - t0
  await new Promise((resolve) => setTimeout(resolve, 100))
  return { moves: n, ms: Math.round(ms), updates: window.__inkstream.updatesSent - before }
}

/**
 * In-page: `n` more people on board `id` — y-websocket peers that only send awareness (a name
 * and a colour), over their own sockets, so the server relays them like anyone else's.
 */
export async function fakePeers ([id, n, names]) {
  for (const ws of window.__fakePeers || []) ws.close()
  window.__fakePeers = []
  const batch = (window.__fakePeerBatch = (window.__fakePeerBatch || 0) + 1)
  const varUint = (v, o) => { while (v > 127) { o.push(128 | (v & 127)); v = Math.floor(v / 128) } o.push(v) }
  const awarenessMessage = (clientId, state) => {
    const json = new TextEncoder().encode(JSON.stringify(state))
    const update = []
    varUint(1, update); varUint(clientId, update); varUint(1, update); varUint(json.length, update); update.push(...json)
    const msg = []
    varUint(1, msg); varUint(update.length, msg); msg.push(...update) // messageAwareness
    return new Uint8Array(msg)
  }
  const colors = ['#e8590c', '#d6336c', '#ae3ec9', '#7048e8', '#1c7ed6', '#0c8599', '#2b8a3e', '#e67700', '#c2255c', '#4263eb']
  await Promise.all(Array.from({ length: n }, (_, i) => new Promise((resolve) => {
    const name = names[i % names.length]
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/${id}?user=${encodeURIComponent(name)}`)
    ws.binaryType = 'arraybuffer'
    ws.onopen = () => { ws.send(awarenessMessage(800000000 + batch * 1000 + i, { user: { name, color: colors[i % colors.length] }, cursor: null, selection: [] })); resolve() }
    ws.onerror = () => resolve()
    window.__fakePeers.push(ws)
  })))
}
const PEER_NAMES = ['Grace Hopper', 'Alan Turing', 'Katherine Johnson', 'Linus Torvalds', 'Margaret Hamilton', 'Dennis Ritchie', 'Barbara Liskov', 'Ken Thompson', 'Radia Perlman', 'Donald Knuth']

/**
 * In-page: the board's floating chrome — which cards intersect, which controls are off screen or
 * not the element under their own centre (covered by another), and the presence avatars.
 */
export function measureChrome () {
  const box = (el) => {
    if (!el || !el.getClientRects().length) return null
    const r = el.getBoundingClientRect()
    return { l: r.left, t: r.top, r: r.right, b: r.bottom }
  }
  const q = (s) => document.querySelector(s)
  const visible = (s) => { const el = q(s); return el && el.getClientRects().length ? el : null }
  const parts = {
    title: box(q('.title-card')),
    toolbar: box(visible('.toolbar')),
    banner: box(visible('[data-testid="preview-banner"]')),
    right: box(q('.right-card')),
    style: box(visible('.style-panel') || visible('.style-toggle')),
    history: box(visible('[data-testid="history-panel"]')),
    zoom: box(q('.zoom-card')),
    undo: box(q('.undo-card'))
  }
  const keys = Object.keys(parts).filter((k) => parts[k])
  const overlaps = []
  for (let i = 0; i < keys.length; i++) {
    for (let j = i + 1; j < keys.length; j++) {
      const a = parts[keys[i]]; const b = parts[keys[j]]
      if (a.l < b.r && a.r > b.l && a.t < b.b && a.b > b.t) overlaps.push(`${keys[i]}/${keys[j]}`)
    }
  }
  const controls = [...document.querySelectorAll([
    '.topbar [data-testid]', '.toolbar [data-testid]', '.zoom-card [data-testid]', '.undo-card [data-testid]'
  ].join(','))].filter((el) => el.getClientRects().length && !el.closest('[hidden]') && !el.closest('.menu'))
  const problems = []
  for (const el of controls) {
    const name = el.dataset.testid + (el.dataset.name ? `(${el.dataset.name})` : '')
    const r = el.getBoundingClientRect()
    if (r.left < -0.5 || r.top < -0.5 || r.right > innerWidth + 0.5 || r.bottom > innerHeight + 0.5) { problems.push(`${name} off screen`); continue }
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2)
    if (!hit || !(hit === el || el.contains(hit))) problems.push(`${name} covered by ${hit ? (hit.dataset.testid || hit.className || hit.tagName) : 'nothing'}`)
  }
  const list = q('[data-testid="presence-list"]')
  const more = q('[data-testid="presence-more"]')
  return {
    overlaps,
    problems,
    controls: controls.length,
    count: Number(list.dataset.count),
    shown: list.querySelectorAll('[data-testid="presence-avatar"]').length,
    plus: more ? Number(more.textContent.replace('+', '')) : 0,
    mode: q('.board').dataset.topbar,
    parts
  }
}

const scenarios = {}

// Two people on one board: live shapes, cursors, presence, and undo of one's own changes only.
scenarios.collaboration = async (browser, facts) => {
  const id = randomBoardId('collab')
  const errors = []
  const ctxA = await userContext(browser, 'Ada', '#4263eb')
  const ctxB = await userContext(browser, 'Grace', '#e8590c')
  const A = await ctxA.newPage(); const B = await ctxB.newPage()
  watchErrors(A, 'A', errors); watchErrors(B, 'B', errors)
  await openBoard(A, base, id)
  await openBoard(B, base, id)

  // presence: both see two people
  await waitFor(async () => (await A.getAttribute('[data-testid="presence-list"]', 'data-count')) === '2' &&
    (await B.getAttribute('[data-testid="presence-list"]', 'data-count')) === '2', { what: 'presence of 2 in both' })
  facts.presenceB = await B.$$eval('[data-testid="presence-avatar"]', (els) => els.map((e) => e.dataset.name))

  // A draws a rectangle
  await A.keyboard.press('r')
  await drag(A, 400, 300, 640, 460)
  const api1 = await waitFor(async () => { const b = await apiBoard(base, id); return b && b.shapes.length === 1 && b }, { what: 'rect in HTTP API' })
  facts.apiAfterRect = api1.shapes.map((s) => ({ type: s.type, createdBy: s.createdBy, w: s.w, h: s.h }))
  await waitFor(async () => (await snapshot(B)).length === 1, { what: 'rect in B' })
  await B.waitForTimeout(150)
  // visually: B's canvas has ink along the rectangle's top edge, none in its (transparent) middle
  facts.inkTopEdgeB = await inkPixels(B, 420, 296, 200, 8)
  facts.inkInsideB = await inkPixels(B, 450, 340, 140, 80)
  await shot(B, 'collab-B-sees-rect')

  // B sees A's cursor (with A's name)
  await A.mouse.move(700, 500)
  await A.mouse.move(720, 520, { steps: 4 })
  const cur = await B.waitForSelector('[data-testid="remote-cursor"][data-name="Ada"]', { state: 'visible', timeout: 10000 })
  facts.cursorSeenByB = !!cur
  facts.cursorTransformB = await cur.evaluate((e) => e.style.transform)
  await shot(B, 'collab-B-sees-cursor')

  // B draws an ellipse; A undoes: only A's rectangle goes away
  await B.keyboard.press('o')
  await drag(B, 800, 250, 960, 380)
  await waitFor(async () => (await snapshot(A)).length === 2, { what: 'ellipse in A' })
  await A.keyboard.press('Control+z')
  const api2 = await waitFor(async () => { const b = await apiBoard(base, id); return b && b.shapes.length === 1 && b }, { what: 'undo reached server' })
  facts.afterUndoApi = api2.shapes.map((s) => ({ type: s.type, createdBy: s.createdBy }))
  await waitFor(async () => (await snapshot(B)).length === 1, { what: 'undo reached B' })
  facts.afterUndoB = (await snapshot(B)).map((s) => s.type)
  // B's undo stack is untouched; A can redo
  await A.keyboard.press('Control+Shift+z')
  await waitFor(async () => (await apiBoard(base, id)).shapes.length === 2, { what: 'redo' })
  facts.afterRedoTypes = byType((await apiBoard(base, id)).shapes)
  await A.waitForTimeout(200)
  await shot(A, 'collab-A-after-redo')
  facts.errors = errors
  await ctxA.close(); await ctxB.close()
}

// Both go offline, both draw, both come back: identical boards, server equal to them.
scenarios.offline = async (browser, facts) => {
  const id = randomBoardId('offline')
  const errors = []
  const ctxA = await userContext(browser, 'Ada', '#4263eb')
  const ctxB = await userContext(browser, 'Grace', '#e8590c')
  const A = await ctxA.newPage(); const B = await ctxB.newPage()
  watchErrors(A, 'A', errors); watchErrors(B, 'B', errors)
  await openBoard(A, base, id)
  await openBoard(B, base, id)
  await ctxA.setOffline(true)
  await ctxB.setOffline(true)
  await waitFor(async () => (await A.getAttribute('[data-testid="connection-status"]', 'data-state')) === 'offline' &&
    (await B.getAttribute('[data-testid="connection-status"]', 'data-state')) === 'offline', { what: 'offline indicator' })
  facts.offlineLabel = await A.textContent('[data-testid="connection-status"]')
  await A.keyboard.press('r')
  await drag(A, 300, 250, 500, 400)
  await A.keyboard.press('p')
  await drag(A, 300, 500, 600, 560, 25)
  await B.keyboard.press('o')
  await drag(B, 700, 250, 900, 400)
  await B.keyboard.press('s')
  await B.mouse.click(800, 560)
  await B.keyboard.type('offline note')
  await B.keyboard.press('Escape')
  await A.waitForTimeout(300)
  facts.whileOffline = { A: (await snapshot(A)).length, B: (await snapshot(B)).length, server: ((await apiBoard(base, id))?.shapes || []).length }
  await shot(A, 'offline-A')
  await ctxA.setOffline(false)
  await ctxB.setOffline(false)
  await waitFor(async () => {
    const [a, b] = [await snapshot(A), await snapshot(B)]
    return a.length === 4 && b.length === 4 && canon(a) === canon(b)
  }, { timeout: 20000, what: 'A and B converge' })
  const a = await snapshot(A)
  const server = await waitFor(async () => { const s = await apiBoard(base, id); return s && s.shapes.length === 4 && s }, { what: 'server has all' })
  facts.converged = canon(a) === canon(await snapshot(B))
  facts.serverEqualsClients = canon(server.shapes) === canon(a)
  if (!facts.serverEqualsClients) facts.diff = { server: server.shapes, client: a }
  facts.types = byType(a)
  facts.statusAfter = await A.getAttribute('[data-testid="connection-status"]', 'data-state')
  await A.waitForTimeout(200)
  await shot(B, 'offline-B-merged')
  facts.errors = errors.filter((e) => !/ERR_INTERNET_DISCONNECTED|WebSocket/.test(e))
  await ctxA.close(); await ctxB.close()
}

// Reload keeps content; a fresh browser (no IndexedDB) gets it from the server.
scenarios.reload = async (browser, facts) => {
  const id = randomBoardId('reload')
  const errors = []
  const ctx = await userContext(browser, 'Ada', '#4263eb')
  const page = await ctx.newPage()
  watchErrors(page, 'A', errors)
  await openBoard(page, base, id)
  await page.keyboard.press('r')
  await drag(page, 300, 250, 500, 400)
  await page.keyboard.press('t')
  await page.mouse.click(600, 300)
  await page.keyboard.type('Keep me')
  await page.keyboard.press('Escape')
  const before = await snapshot(page)
  await waitFor(async () => (await apiBoard(base, id))?.shapes.length === 2, { what: 'server has 2' })
  await page.reload()
  await page.waitForFunction(() => window.__inkstream && window.__inkstream.shapeCount() === 2, null, { timeout: 10000 })
  facts.sameAfterReload = canon(before) === canon(await snapshot(page))
  const ctx2 = await userContext(browser, 'Grace', '#e8590c')
  const p2 = await ctx2.newPage()
  watchErrors(p2, 'B', errors)
  await openBoard(p2, base, id)
  await p2.waitForFunction(() => window.__inkstream.shapeCount() === 2, null, { timeout: 10000 })
  facts.sameInFreshBrowser = canon(before) === canon(await snapshot(p2))
  await p2.waitForTimeout(200)
  await shot(p2, 'reload-fresh-browser')
  facts.errors = errors
  await ctx.close(); await ctx2.close()
}

// "New board" from the boards list, then the board shows up in the list.
scenarios.newBoard = async (browser, facts) => {
  const errors = []
  const ctx = await userContext(browser, 'Ada', '#4263eb')
  const page = await ctx.newPage()
  watchErrors(page, 'A', errors)
  await page.goto(base + '/')
  await page.waitForSelector('[data-testid="new-board"]')
  await shot(page, 'home-before')
  await Promise.all([page.waitForURL(/\/b\/[A-Za-z0-9_-]{10}$/), page.click('[data-testid="new-board"]')])
  const id = decodeURIComponent(new URL(page.url()).pathname.split('/').pop())
  facts.boardId = id
  await page.waitForFunction(() => document.querySelector('[data-testid="connection-status"]')?.dataset.state === 'connected')
  // the title field is focused for naming the new board
  await page.keyboard.press('Control+a')
  await page.keyboard.type('Roadmap Q3')
  await page.keyboard.press('Enter')
  await page.keyboard.press('r')
  await drag(page, 400, 300, 600, 420)
  await page.keyboard.press('o')
  await drag(page, 650, 300, 800, 420)
  const b = await waitFor(async () => { const x = await apiBoard(base, id); return x && x.shapes.length === 2 && x.meta.title === 'Roadmap Q3' && x }, { what: 'new board on server' })
  facts.title = b.meta.title
  await page.goto(base + '/')
  const card = await page.waitForSelector(`[data-testid="board-card"][data-board-id="${id}"]`)
  facts.cardText = (await card.textContent()).replace(/\s+/g, ' ').trim()
  await page.waitForTimeout(300)
  await shot(page, 'home-with-board')
  facts.errors = errors
  await ctx.close()
}

// Import a real .excalidraw file (file picker and drag-and-drop), export SVG/PNG/.excalidraw.
scenarios.importExport = async (browser, facts) => {
  const id = randomBoardId('import')
  const errors = []
  const ctx = await userContext(browser, 'Ada', '#4263eb')
  const page = await ctx.newPage()
  watchErrors(page, 'A', errors)
  await openBoard(page, base, id)
  await page.setInputFiles('[data-testid="import-input"]', FIXTURE)
  const report = await page.waitForSelector('[data-testid="import-report"]')
  facts.report = await report.textContent()
  facts.skipped = JSON.parse(await report.getAttribute('data-skipped'))
  const b = await waitFor(async () => { const x = await apiBoard(base, id); return x && x.shapes.length >= 12 && x }, { what: 'imported shapes on server' })
  facts.apiTypes = byType(b.shapes)
  facts.apiTexts = b.shapes.filter((s) => s.type === 'text').map((s) => s.text).sort()
  const rect = b.shapes.find((s) => s.type === 'rect' && s.fill === '#a5d8ff')
  facts.designBox = rect ? { x: rect.x, y: rect.y, w: rect.w, h: rect.h } : null
  await page.keyboard.press('Escape')
  await page.waitForTimeout(300)
  await shot(page, 'import-fixture')

  // SVG export
  await page.click('[data-testid="menu-button"]')
  const [svgDl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="export-svg"]')])
  const svg = readFileSync(await svgDl.path(), 'utf8')
  facts.svgName = svgDl.suggestedFilename()
  facts.svgHasAllShapes = b.shapes.every((s) => svg.includes(`data-shape-id="${s.id}"`))
  facts.svgHasTexts = facts.apiTexts.every((t) => svg.includes(t))
  facts.svgStartsWith = svg.slice(0, 60)
  // PNG export
  await page.click('[data-testid="menu-button"]')
  const [pngDl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="export-png"]')])
  const png = readFileSync(await pngDl.path())
  facts.pngSignature = png.subarray(1, 4).toString('latin1')
  facts.pngBytes = png.length
  // .excalidraw export round-trips through our own importer
  await page.click('[data-testid="menu-button"]')
  const [exDl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="export-excalidraw"]')])
  const ex = JSON.parse(readFileSync(await exDl.path(), 'utf8'))
  facts.excalidrawExport = { type: ex.type, elements: ex.elements.length, types: byType(ex.elements) }

  // drag-and-drop import onto a second board
  const id2 = randomBoardId('drop')
  await openBoard(page, base, id2)
  const text = readFileSync(FIXTURE, 'utf8')
  await page.evaluate((text) => {
    const dt = new DataTransfer()
    dt.items.add(new File([text], 'sprint-planning.excalidraw', { type: 'application/json' }))
    const target = document.querySelector('[data-testid="board-canvas"]')
    for (const type of ['dragenter', 'dragover', 'drop']) {
      target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }))
    }
  }, text)
  const b2 = await waitFor(async () => { const x = await apiBoard(base, id2); return x && x.shapes.length >= 12 && x }, { what: 'dropped shapes on server' })
  facts.dropTypes = byType(b2.shapes)

  // the same fixture through the server's import (POST /import): the same shapes as the web import
  const srv = randomBoardId('import-srv')
  facts.serverImport = await postImport(srv, readFileSync(FIXTURE, 'utf8'))
  facts.webShapes = b.shapes
  facts.serverShapes = (await apiBoard(base, srv)).shapes

  // a scene mixing valid elements with malformed ones, through the file picker: the valid ones
  // land exactly, nothing is made up, the user is told which were skipped and why -- and the
  // server, given the same file, reaches the same verdicts with the same reasons
  const id3 = randomBoardId('import-bad')
  await openBoard(page, base, id3)
  await page.setInputFiles('[data-testid="import-input"]', INVALID_FIXTURE)
  const badReport = await page.waitForSelector('[data-testid="import-report"]')
  await page.waitForTimeout(300) // the toast's entrance animation
  await shot(page, 'import-invalid-report')
  facts.invalidReport = {
    text: await badReport.innerText(),
    skipped: JSON.parse(await badReport.getAttribute('data-skipped')),
    invalid: JSON.parse(await badReport.getAttribute('data-invalid')),
    imported: Number(await badReport.getAttribute('data-imported')),
    deleted: await page.evaluate(() => window.__inkstream.lastImport.deleted),
    closable: !!(await badReport.$('[data-testid="toast-close"]'))
  }
  const b3 = await waitFor(async () => { const x = await apiBoard(base, id3); return x && x.shapes.length >= facts.invalidReport.imported && x }, { what: 'valid shapes on server' })
  await page.waitForTimeout(500) // anything more (there should be nothing) would have arrived by now
  facts.invalidWebShapes = (await apiBoard(base, id3)).shapes
  facts.invalidBoardFirstRead = b3.shapes.length
  const srvBad = randomBoardId('import-bad-srv')
  facts.invalidServerImport = await postImport(srvBad, readFileSync(INVALID_FIXTURE, 'utf8'))
  facts.invalidServerShapes = (await apiBoard(base, srvBad)).shapes
  // "Show all" lists every reason (and keeps the toast up until it is closed)
  await page.click('[data-testid="import-show-all"]')
  await page.waitForTimeout(200)
  facts.invalidReport.allReasons = await badReport.$$eval('.toast-reasons li', (els) => els.map((e) => e.textContent))
  facts.invalidReport.moreAfterShowAll = await badReport.$eval('.toast-more', (e) => (e.hidden ? null : e.textContent))
  await shot(page, 'import-invalid-report-all')
  await page.waitForTimeout(15500) // past the toast's own timeout: still there
  facts.invalidReport.keptOpen = (await page.$('[data-testid="import-report"]')) !== null
  await page.click('[data-testid="toast-close"]')
  await page.waitForTimeout(400)
  facts.invalidReportClosed = (await page.$('[data-testid="import-report"]')) === null
  facts.errors = errors
  await ctx.close()
}

/** POST an .excalidraw file's text to the server's import; its JSON answer. */
async function postImport (id, text) {
  const r = await fetch(`${base}/api/boards/${id}/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text })
  if (!r.ok) throw new Error(`POST /api/boards/${id}/import: ${r.status} ${await r.text()}`)
  return r.json()
}

// Selection and editing: select, move, resize, duplicate, z-order, delete, styles, tools.
scenarios.editing = async (browser, facts) => {
  const id = randomBoardId('edit')
  const errors = []
  const ctx = await userContext(browser, 'Ada', '#4263eb')
  const page = await ctx.newPage()
  watchErrors(page, 'A', errors)
  await openBoard(page, base, id)
  // every tool has a button with an aria-label and a tooltip, and a keyboard shortcut
  const tools = await page.$$eval('.tool-btn[data-tool]', (els) => els.map((e) => ({ tool: e.dataset.tool, label: e.getAttribute('aria-label'), tip: e.dataset.tip, svg: !!e.querySelector('svg') })))
  facts.tools = tools
  const keys = { v: 'select', p: 'pen', r: 'rect', o: 'ellipse', l: 'line', a: 'arrow', t: 'text', s: 'sticky', e: 'eraser' }
  facts.shortcuts = {}
  for (const [k, t] of Object.entries(keys)) {
    await page.keyboard.press(k)
    facts.shortcuts[k] = (await page.getAttribute(`.tool-btn[data-tool="${t}"]`, 'aria-pressed')) === 'true'
  }
  await page.keyboard.press('r')
  await page.click('[data-testid="fill-sky"]')
  await drag(page, 300, 250, 500, 400)
  const rect0 = (await snapshot(page))[0]
  facts.rectFill = rect0.fill
  // move with the select tool (now active after drawing)
  await drag(page, 400, 325, 460, 365)
  const moved = (await snapshot(page))[0]
  facts.moveDelta = [moved.x - rect0.x, moved.y - rect0.y]
  // resize from the south-east handle (box is drawn 4px outside the shape)
  const se = { x: 300 + 60 + 200 + 4, y: 250 + 40 + 150 + 4 }
  await drag(page, se.x, se.y, se.x + 100, se.y + 50)
  const resized = (await snapshot(page))[0]
  facts.resized = [resized.w, resized.h]
  // duplicate, bring the original to front, delete the copy
  await page.keyboard.press('Control+d')
  let shapes = await snapshot(page)
  facts.afterDuplicate = shapes.length
  const copyId = shapes[1].id
  await page.mouse.click(100, 700) // empty: clears selection
  await page.mouse.click(360 - 1, 290 + 40) // the original's left edge area
  await page.keyboard.press('Control+Shift+BracketRight')
  shapes = await snapshot(page)
  facts.originalOnTop = shapes[shapes.length - 1].id === rect0.id
  await page.keyboard.press('Delete')
  shapes = await snapshot(page)
  facts.afterDelete = shapes.map((s) => s.id)
  facts.copyRemains = shapes.length === 1 && shapes[0].id === copyId
  // marquee select + stroke colour change
  await page.keyboard.press('o')
  await drag(page, 700, 200, 820, 300)
  await page.mouse.click(100, 700)
  await drag(page, 250, 150, 1000, 600)
  facts.marqueeSelected = await page.evaluate(() => window.__inkstream.awareness.getLocalState().selection.length)
  await page.click('[data-testid="stroke-red"]')
  shapes = await snapshot(page)
  facts.strokes = shapes.map((s) => s.stroke)
  // zoom controls
  await page.click('[data-testid="zoom-in"]')
  facts.zoomAfterIn = (await page.evaluate(() => window.__inkstream.camera)).zoom
  await page.click('[data-testid="zoom-fit"]')
  facts.zoomLabelAfterFit = await page.textContent('[data-testid="zoom-reset"]')
  // eraser
  await page.keyboard.press('e')
  const box = await page.evaluate(() => { const s = window.__inkstream.snapshot().find((x) => x.type === 'ellipse'); return s })
  const cam = await page.evaluate(() => window.__inkstream.camera)
  const ex = (box.x + box.w / 2 - cam.x) * cam.zoom; const ey = (box.y - cam.y) * cam.zoom
  await drag(page, ex, ey - 30, ex, ey + 30, 10)
  shapes = await snapshot(page)
  facts.afterErase = byType(shapes)
  // undo brings it back
  await page.keyboard.press('Control+z')
  facts.afterEraseUndo = byType(await snapshot(page))
  // a stroke sends a bounded number of updates (pointer moves are coalesced)
  await page.keyboard.press('p')
  const before = await page.evaluate(() => window.__inkstream.updatesSent)
  const tStroke = Date.now()
  await page.mouse.move(300, 600)
  await page.mouse.down()
  for (let i = 0; i < 120; i++) { await page.mouse.move(300 + i * 4, 600 + Math.sin(i / 6) * 40) }
  await page.mouse.up()
  const after = await page.evaluate(() => window.__inkstream.updatesSent)
  facts.strokeMoves = 120
  facts.strokeMs = Date.now() - tStroke
  facts.strokeUpdates = after - before
  // the same with fast input (a 250 Hz pointer): 300 moves in ~1.2 s, dispatched in the page
  facts.fastStroke = await page.evaluate(fastStroke, 300)
  await page.waitForTimeout(200)
  await shot(page, 'editing')
  facts.errors = errors
  await ctx.close()
}

// Version history: preview an earlier version read-only while others edit, restore it, fork it.
scenarios.history = async (browser, facts) => {
  const id = randomBoardId('hist')
  const errors = []
  const ctxA = await userContext(browser, 'Ada', '#4263eb')
  const ctxB = await userContext(browser, 'Grace', '#e8590c')
  const A = await ctxA.newPage(); const B = await ctxB.newPage()
  watchErrors(A, 'A', errors); watchErrors(B, 'B', errors)
  await openBoard(A, base, id)
  await openBoard(B, base, id)
  // Ada draws A (a rectangle), then Grace draws B (an ellipse)
  await A.keyboard.press('r')
  await drag(A, 300, 250, 500, 400)
  await waitFor(async () => (await apiBoard(base, id))?.shapes.length === 1, { what: 'A on server' })
  await B.keyboard.press('o')
  await drag(B, 700, 250, 900, 400)
  await waitFor(async () => (await apiBoard(base, id))?.shapes.length === 2 && (await snapshot(A)).length === 2, { what: 'B on server and in A' })
  const rectA = (await snapshot(A)).find((s) => s.type === 'rect')
  // the last version with only A: the newest version by Ada before Grace's first
  const vs = (await (await fetch(`${base}/api/boards/${id}/versions?after=0&limit=1000`)).json()).versions
  const firstGrace = vs.find((v) => v.user === 'Grace').version
  facts.versionOnlyA = firstGrace - 1
  facts.authors = [...new Set(vs.map((v) => v.user))]

  // open the panel with its shortcut; versions are grouped by author
  await A.mouse.click(640, 600) // focus the board (select tool after drawing: clears the selection)
  await A.keyboard.press('h')
  await A.waitForSelector('[data-testid="history-panel"]:not([hidden])')
  const groups = await waitFor(async () => {
    const g = await A.$$eval('[data-testid="history-group"]', (els) => els.map((e) => ({ user: e.dataset.user, first: +e.dataset.first, last: +e.dataset.last })))
    return g.length >= 2 && g
  }, { what: 'history groups' })
  facts.groups = groups
  await A.waitForTimeout(200)
  await shot(A, 'history-panel-live')
  // preview Ada's group (= the version with only A)
  await A.click(`[data-testid="history-group"][data-user="Ada"][data-last="${facts.versionOnlyA}"]`)
  await A.waitForFunction((v) => window.__inkstream.preview === v, facts.versionOnlyA)
  await A.waitForTimeout(150)
  facts.bannerText = (await A.textContent('[data-testid="preview-banner-text"]')).trim()
  facts.previewInkA = await inkPixels(A, 320, 246, 160, 8) // top edge of A
  facts.previewInkB = await inkPixels(A, 700, 240, 200, 170) // where B is live
  facts.toolbarHidden = await A.$eval('.toolbar', (e) => e.hidden)
  await shot(A, 'history-preview-only-A')
  // read-only: a drag pans, it does not draw; others keep editing live
  const before = (await snapshot(A)).length
  await drag(A, 600, 600, 620, 640)
  await B.keyboard.press('r')
  await drag(B, 700, 500, 900, 640) // Grace draws C while Ada previews
  await waitFor(async () => (await snapshot(A)).length === before + 1, { what: 'C reaches A live' })
  await A.waitForTimeout(150)
  facts.stillPreviewing = await A.evaluate(() => window.__inkstream.preview)
  await A.evaluate(() => window.__inkstream.setCamera({ x: window.__inkstream.camera.x + 20, y: window.__inkstream.camera.y + 40 })) // undo the pan
  await A.waitForTimeout(150)
  facts.previewInkC = await inkPixels(A, 700, 490, 200, 160)
  facts.liveCountDuringPreview = (await snapshot(A)).length
  // restore: both contexts see only A, live
  await A.click('[data-testid="history-restore"]')
  await A.waitForSelector('[data-testid="restore-report"]')
  const restored = await waitFor(async () => { const b = await apiBoard(base, id); return b && b.shapes.length === 1 && b }, { what: 'restore on server' })
  facts.serverAfterRestore = restored.shapes.map((s) => ({ id: s.id, type: s.type }))
  await waitFor(async () => (await snapshot(A)).length === 1 && (await snapshot(B)).length === 1, { what: 'restore reaches A and B' })
  facts.liveA = (await snapshot(A)).map((s) => s.id)
  facts.liveB = (await snapshot(B)).map((s) => s.id)
  facts.rectAId = rectA.id
  facts.previewAfterRestore = await A.evaluate(() => window.__inkstream.preview)
  await A.waitForTimeout(600)
  await shot(A, 'history-restored-A')
  await shot(B, 'history-restored-B')
  // fork from the version with only A (slider), then the new board has A
  await A.locator('[data-testid="history-slider"]').fill(String(facts.versionOnlyA))
  await A.waitForFunction((v) => window.__inkstream.preview === v, facts.versionOnlyA)
  await Promise.all([A.waitForURL((u) => !u.pathname.endsWith('/' + id)), A.click('[data-testid="history-fork"]')])
  const forkId = decodeURIComponent(new URL(A.url()).pathname.split('/').pop())
  facts.forkId = forkId
  await A.waitForFunction(() => window.__inkstream && window.__inkstream.shapeCount() === 1, null, { timeout: 10000 })
  facts.forkShapes = (await snapshot(A)).map((s) => ({ id: s.id, type: s.type, x: s.x, y: s.y, w: s.w, h: s.h }))
  facts.rectA = { id: rectA.id, type: rectA.type, x: rectA.x, y: rectA.y, w: rectA.w, h: rectA.h }
  facts.forkServer = (await apiBoard(base, forkId)).shapes.map((s) => s.type)
  facts.forkToast = await A.textContent('[data-testid="toast"]')
  await A.waitForTimeout(300)
  await shot(A, 'history-fork')
  facts.errors = errors
  await ctxA.close(); await ctxB.close()
}

// The name chosen in the welcome dialog (and later "Change your name…") is the author the server
// records for the versions that follow, not the random name the page started with.
scenarios.names = async (browser, facts) => {
  const id = randomBoardId('names')
  const errors = []
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } }) // no stored name
  const page = await ctx.newPage()
  watchErrors(page, 'A', errors)
  await openBoard(page, base, id)
  await page.waitForSelector('[data-testid="name-input"]')
  facts.suggested = await page.inputValue('[data-testid="name-input"]')
  await page.waitForTimeout(150)
  await shot(page, 'welcome-dialog')
  await page.fill('[data-testid="name-input"]', 'Lin')
  await page.click('[data-testid="name-submit"]')
  await page.waitForFunction(() => document.body.dataset.synced === 'true' && window.__inkstream.provider.params.user === 'Lin')
  facts.titleSelection = await page.evaluate(() => { const t = document.querySelector('[data-testid="board-title"]'); return { focused: document.activeElement === t, selected: t.selectionEnd - t.selectionStart, windowSel: String(getSelection()) } })
  await page.keyboard.press('r')
  await drag(page, 300, 250, 500, 400)
  await waitFor(async () => (await apiBoard(base, id))?.shapes.length === 1, { what: 'rect on server' })
  const versions = async () => (await (await fetch(`${base}/api/boards/${id}/versions?after=0&limit=1000`)).json()).versions
  facts.authorsAfterWelcome = [...new Set((await versions()).map((v) => v.user))]
  facts.createdBy = (await apiBoard(base, id)).shapes[0].createdBy
  const n1 = (await versions()).length
  // rename from the menu
  await page.click('[data-testid="menu-button"]')
  await page.click('[data-testid="change-name"]')
  await page.fill('[data-testid="name-input"]', 'Lin Q')
  await page.click('[data-testid="name-submit"]')
  await page.waitForFunction(() => document.body.dataset.synced === 'true' && window.__inkstream.provider.wsconnected && window.__inkstream.provider.params.user === 'Lin Q')
  facts.statusAfterRename = await page.getAttribute('[data-testid="connection-status"]', 'data-state')
  await page.keyboard.press('o')
  await drag(page, 700, 250, 900, 400)
  await waitFor(async () => (await apiBoard(base, id))?.shapes.length === 2, { what: 'ellipse on server' })
  facts.authorsAfterRename = [...new Set((await versions()).slice(n1).map((v) => v.user))]
  facts.presenceName = await page.getAttribute('[data-testid="presence-avatar"]', 'data-name')
  facts.errors = errors
  await ctx.close()
}

// A phone-sized screen (390×844): every control is reachable (the top element at its centre),
// the style panel folds away, and the history panel opens as a bottom sheet.
scenarios.phone = async (browser, facts) => {
  const id = randomBoardId('phone')
  const errors = []
  const ctx = await userContext(browser, 'Ada', '#4263eb', { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true })
  const page = await ctx.newPage()
  watchErrors(page, 'A', errors)
  await openBoard(page, base, id)
  /** For each selector: is the element (or its descendant) what the user's finger hits at its centre? */
  const onTop = (sels) => page.evaluate((sels) => Object.fromEntries(sels.map((sel) => {
    const el = document.querySelector(sel)
    if (!el || !el.getClientRects().length) return [sel, 'missing']
    const r = el.getBoundingClientRect()
    const x = r.left + r.width / 2; const y = r.top + r.height / 2
    const inView = x >= 0 && y >= 0 && x <= innerWidth && y <= innerHeight
    const hit = document.elementFromPoint(x, y)
    return [sel, inView && !!hit && (hit === el || el.contains(hit)) ? 'ok' : `covered by ${hit ? (hit.dataset.testid || hit.className || hit.tagName) : 'nothing'}`]
  })), sels)
  const tools = ['select', 'pen', 'rect', 'ellipse', 'line', 'arrow', 'text', 'sticky', 'eraser'].map((t) => `[data-testid="tool-${t}"]`)
  const chrome = ['zoom-out', 'zoom-reset', 'zoom-in', 'zoom-fit', 'undo', 'redo', 'menu-button', 'history-button', 'share', 'board-title', 'style-toggle'].map((t) => `[data-testid="${t}"]`)
  facts.toolsOnTop = await onTop(tools)
  facts.chromeOnTop = await onTop(chrome)
  const area = (sel) => page.evaluate((sel) => { const el = document.querySelector(sel); if (!el || !el.getClientRects().length) return 0; const r = el.getBoundingClientRect(); return (r.width * r.height) / (innerWidth * innerHeight) }, sel)
  facts.stylePanelAreaFolded = await area('.style-panel')
  await shot(page, 'phone-board')
  // open the style panel: a compact card, every swatch reachable; it folds on the next tap on the board
  await page.tap('[data-testid="style-toggle"]')
  facts.stylePanelAreaOpen = await area('.style-panel')
  facts.swatchesOnTop = await onTop(['stroke-ink', 'stroke-purple', 'width-thin', 'width-bold'].map((t) => `[data-testid="${t}"]`))
  facts.toolsOnTopWithStyle = await onTop(tools)
  await page.tap('[data-testid="stroke-red"]')
  await shot(page, 'phone-style-open')
  // draw with the rectangle tool (taps on the toolbar, a drag on the board)
  await page.tap('[data-testid="tool-rect"]')
  facts.styleFoldsOnToolChange = await area('.style-panel')
  await drag(page, 100, 300, 290, 460)
  await waitFor(async () => (await apiBoard(base, id))?.shapes.length === 1, { what: 'rect on server' })
  facts.rect = (await snapshot(page)).map((s) => ({ type: s.type, stroke: s.stroke }))
  facts.toolsOnTopWithSelection = await onTop(tools)
  await shot(page, 'phone-rect-selected')
  // history as a bottom sheet
  await page.tap('[data-testid="history-button"]')
  await page.waitForSelector('[data-testid="history-group"]')
  facts.historyOnTop = await onTop(['history-slider', 'history-fork', 'history-close'].map((t) => `[data-testid="${t}"]`))
  await page.locator('[data-testid="history-slider"]').fill('1')
  await page.waitForFunction(() => window.__inkstream.preview === 1)
  facts.bannerOnTop = await onTop(['[data-testid="back-to-live"]'])
  await page.waitForTimeout(200)
  await shot(page, 'phone-history-preview')
  await page.tap('[data-testid="back-to-live"]')
  await page.tap('[data-testid="history-close"]')
  facts.toolsOnTopAfterHistory = await onTop(tools)
  facts.errors = errors
  await ctx.close()
}

// Rough edges: zoom to fit beside the style panel, hollow shapes selectable from inside, no text
// selection from dragging on the chrome, Escape cancels a title edit, export file names, and a
// "New board" that writes nothing until used (also with the welcome dialog in front).
scenarios.roughEdges = async (browser, facts) => {
  const id = randomBoardId('rough')
  const errors = []
  const ctx = await userContext(browser, 'Ada', '#4263eb')
  const page = await ctx.newPage()
  watchErrors(page, 'A', errors)
  await openBoard(page, base, id)
  const rectOf = (sel) => page.$eval(sel, (e) => { const r = e.getBoundingClientRect(); return { l: r.left, t: r.top, r: r.right, b: r.bottom } })
  const screenBoxes = () => page.evaluate(() => {
    const cam = window.__inkstream.camera
    return window.__inkstream.snapshot().map((s) => ({ id: s.id, l: (s.x - cam.x) * cam.zoom, t: (s.y - cam.y) * cam.zoom, r: (s.x + s.w - cam.x) * cam.zoom, b: (s.y + s.h - cam.y) * cam.zoom }))
  })
  // two hollow shapes far apart
  await page.keyboard.press('r')
  await drag(page, 400, 300, 600, 450)
  await page.keyboard.press('o')
  await drag(page, 900, 500, 1100, 700)
  const [rect, ell] = await snapshot(page)
  // click inside each (select tool is active after drawing): selects it
  await page.mouse.click(100, 700)
  await page.mouse.click(500, 375)
  facts.insideRect = await page.evaluate(() => window.__inkstream.awareness.getLocalState().selection)
  await page.mouse.click(1000, 600)
  facts.insideEllipse = await page.evaluate(() => window.__inkstream.awareness.getLocalState().selection)
  facts.ids = { rect: rect.id, ellipse: ell.id }
  await page.waitForTimeout(100)
  await shot(page, 'rough-hollow-selected')
  // a drag from the style panel across the page selects no page text
  await page.mouse.click(100, 700) // nothing selected
  await page.keyboard.press('p') // the pen shows the style panel
  const sp = await rectOf('.style-panel')
  await page.mouse.move(sp.l + 14, sp.t + 10)
  await page.mouse.down()
  await page.mouse.move(sp.r + 300, sp.b + 200, { steps: 8 })
  await page.mouse.move(20, 20, { steps: 8 })
  await page.mouse.up()
  facts.textSelectedByDrag = await page.evaluate(() => String(getSelection()))
  facts.shapesAfterPanelDrag = (await snapshot(page)).length
  // zoom to fit (pen tool: the style panel is showing) keeps every shape clear of the chrome
  await page.click('[data-testid="zoom-fit"]')
  await page.waitForTimeout(100)
  const boxes = await screenBoxes()
  const chrome = { style: await rectOf('.style-panel'), title: await rectOf('.title-card'), toolbar: await rectOf('.toolbar'), zoom: await rectOf('.zoom-card') }
  const overlap = (a, b) => a.l < b.r && a.r > b.l && a.t < b.b && a.b > b.t
  facts.fitOverlaps = Object.fromEntries(Object.entries(chrome).map(([k, c]) => [k, boxes.some((b) => overlap(b, c))]))
  facts.fitInView = boxes.every((b) => b.l >= 0 && b.t >= 0 && b.r <= 1280 && b.b <= 800)
  await shot(page, 'rough-zoom-fit-style-panel')
  // Escape in the title box cancels, visibly
  await page.click('[data-testid="board-title"]')
  facts.titleHint = (await page.textContent('[data-testid="title-hint"]')).replace(/\s+/g, ' ').trim()
  facts.titleHintVisible = await page.isVisible('[data-testid="title-hint"]')
  await page.keyboard.type('Oops')
  await shot(page, 'rough-title-editing')
  await page.keyboard.press('Escape')
  facts.titleAfterEscape = await page.inputValue('[data-testid="board-title"]')
  facts.escapeToast = await page.textContent('[data-testid="toast"]')
  await page.waitForTimeout(300)
  facts.serverTitleAfterEscape = (await apiBoard(base, id)).meta.title ?? ''
  // exports are named after the board: its id while untitled, then its title
  await page.click('[data-testid="menu-button"]')
  const [png0] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="export-png"]')])
  facts.pngNameUntitled = png0.suggestedFilename()
  await page.click('[data-testid="board-title"]')
  await page.keyboard.type('Café plan: Q3/Q4')
  await page.keyboard.press('Enter')
  await page.click('[data-testid="menu-button"]')
  const [png1] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="export-png"]')])
  facts.pngName = png1.suggestedFilename()
  await page.click('[data-testid="menu-button"]')
  const [svg1] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="export-svg"]')])
  facts.svgName = svg1.suggestedFilename()
  facts.boardId = id
  await ctx.close()

  // "New board" by someone without a name yet: the welcome dialog comes first and leaves nothing
  // highlighted; nothing reaches the server (nor the list) until the board is named or drawn on
  const ctx2 = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  const p2 = await ctx2.newPage()
  watchErrors(p2, 'B', errors)
  await p2.goto(base + '/')
  await Promise.all([p2.waitForURL(/\/b\/[A-Za-z0-9_-]{10}$/), p2.click('[data-testid="new-board"]')])
  const newId = decodeURIComponent(new URL(p2.url()).pathname.split('/').pop())
  await p2.waitForSelector('[data-testid="name-input"]')
  await p2.waitForTimeout(300)
  facts.focusDuringWelcome = await p2.evaluate(() => document.activeElement?.dataset.testid || document.activeElement?.tagName)
  facts.titleSelectedDuringWelcome = await p2.evaluate(() => { const t = document.querySelector('[data-testid="board-title"]'); return t.selectionEnd - t.selectionStart })
  await p2.fill('[data-testid="name-input"]', 'Kai')
  await p2.click('[data-testid="name-submit"]')
  await p2.waitForTimeout(400)
  facts.afterWelcome = await p2.evaluate(() => ({ focus: document.activeElement?.dataset.testid || document.activeElement?.tagName, selected: String(getSelection()), title: document.querySelector('[data-testid="board-title"]').value }))
  await shot(p2, 'rough-new-board-after-welcome')
  await p2.waitForTimeout(800)
  facts.newBoardOnServer = await apiBoard(base, newId)
  // abandon it: back to the list, which does not show it
  await p2.goto(base + '/')
  await p2.waitForSelector('[data-testid="board-list"] :is([data-testid="board-card"], .empty-state)')
  facts.abandonedInList = await p2.$$eval('[data-testid="board-card"]', (els, id) => els.some((e) => e.dataset.boardId === id), newId)
  const listed = await (await fetch(`${base}/api/boards`)).json()
  facts.abandonedOnServerList = (Array.isArray(listed) ? listed : listed.boards).some((b) => b.id === newId)
  facts.errors = errors
  await ctx2.close()
}

// A large board: it opens from the socket index.html opens early, reloads from the offline copy,
// and while B pans over it (frames drawn from the scene cache) A's new shape appears on B's
// canvas during the pan, not only after it.
scenarios.bigBoard = async (browser, facts) => {
  const id = randomBoardId('big')
  const errors = []
  const ctxA = await userContext(browser, 'Ada', '#4263eb')
  const ctxB = await userContext(browser, 'Grace', '#e8590c')
  const A = await ctxA.newPage(); const B = await ctxB.newPage()
  watchErrors(A, 'A', errors); watchErrors(B, 'B', errors)
  await openBoard(A, base, id)
  // A writes 600 shapes in a grid (one update)
  await A.evaluate((n) => {
    const { doc, Y } = window.__inkstream
    const shapes = doc.getMap('shapes')
    doc.transact(() => {
      for (let i = 0; i < n; i++) {
        const m = new Y.Map()
        const f = { type: i % 2 ? 'rect' : 'ellipse', x: (i % 30) * 60, y: Math.floor(i / 30) * 50, w: 44, h: 34, rotation: 0, stroke: '#1e1e2e', fill: '#a5d8ff', width: 2, opacity: 1, font: 24, z: 'a' + String(i).padStart(4, '0'), createdBy: 'Ada', createdAt: 1 }
        for (const [k, v] of Object.entries(f)) m.set(k, v)
        shapes.set('g' + i, m)
      }
    })
  }, 600)
  await waitFor(async () => (await apiBoard(base, id))?.shapes.length === 600, { what: '600 shapes on the server' })
  // B opens it fresh: the early socket is what y-websocket uses, and B gets all of it
  await openBoard(B, base, id)
  await B.waitForFunction(() => window.__inkstream.shapeCount() === 600, null, { timeout: 15000 })
  facts.earlySocketUsed = await B.evaluate(() => window.__inkstream.provider.ws?.early === true)
  facts.openMarks = await B.evaluate(() => performance.getEntriesByType('mark').map((e) => e.name.replace('inkstream:', '')))
  // B pans (a wheel event per frame) while A adds a magenta rectangle inside B's view
  await B.evaluate(() => window.__inkstream.zoomToFit())
  await B.waitForTimeout(300)
  const target = await B.evaluate(() => { const c = window.__inkstream.camera; const el = document.querySelector('[data-testid="board-canvas"]'); return { x: c.x + el.clientWidth / 2 / c.zoom, y: c.y + el.clientHeight / 2 / c.zoom } })
  const panning = B.evaluate(() => new Promise((resolve) => {
    const canvas = document.querySelector('[data-testid="board-canvas"]')
    const stats = window.__inkstream.stats
    const blits0 = stats.cacheBlits || 0
    let i = 0
    const magenta = () => {
      const r = document.createElement('canvas'); r.width = canvas.width; r.height = canvas.height
      const rc = r.getContext('2d', { willReadFrequently: true })
      rc.drawImage(canvas, 0, 0)
      const d = rc.getImageData(0, 0, r.width, r.height).data
      let n = 0
      for (let k = 0; k < d.length; k += 16) if (d[k] > 200 && d[k + 1] < 80 && d[k + 2] > 200) n++
      return n
    }
    const step = () => {
      const r = canvas.getBoundingClientRect()
      canvas.dispatchEvent(new WheelEvent('wheel', { deltaX: i % 2 ? 3 : -3, deltaY: 0, clientX: r.width / 2, clientY: r.height / 2, bubbles: true, cancelable: true }))
      i++
      if (i % 5 === 0 && window.__inkstream.shapeCount() === 601) {
        const n = magenta()
        if (n > 0) { resolve({ frames: i, magentaPixels: n, blits: (stats.cacheBlits || 0) - blits0, patches: stats.cachePatches || 0, stillMoving: true }); return }
      }
      if (i > 600) { resolve({ frames: i, magentaPixels: 0, blits: (stats.cacheBlits || 0) - blits0, shapes: window.__inkstream.shapeCount() }); return }
      requestAnimationFrame(step)
    }
    requestAnimationFrame(step)
  }))
  await A.waitForTimeout(500)
  await A.evaluate(({ x, y }) => {
    const { doc, Y } = window.__inkstream
    const m = new Y.Map()
    const f = { type: 'rect', x: x - 40, y: y - 30, w: 80, h: 60, rotation: 0, stroke: '#ff00ff', fill: '#ff00ff', width: 2, opacity: 1, font: 24, z: 'b0', createdBy: 'Ada', createdAt: 2 }
    for (const [k, v] of Object.entries(f)) m.set(k, v)
    doc.transact(() => doc.getMap('shapes').set('live-during-pan', m))
  }, target)
  facts.duringPan = await panning
  await B.waitForTimeout(400)
  await shot(B, 'big-board-live-edit-during-pan')
  // reload: the offline copy draws it, the socket then asks only for what is new
  await B.reload()
  await B.waitForFunction(() => window.__inkstream && window.__inkstream.shapeCount() === 601 && document.body.dataset.synced === 'true', null, { timeout: 15000 })
  facts.afterReload = await B.evaluate(() => ({ early: window.__inkstream.provider.ws?.early === true, localLoaded: document.body.dataset.localLoaded === 'true', shapes: window.__inkstream.shapeCount() }))
  facts.errors = errors
  await ctxA.close(); await ctxB.close()
}

// The top bar at every width from a phone to a 2560 px screen, with 1 to 10 people on the board
// and a long title: no two cards intersect, every control is the element under its own centre,
// the people who do not fit collapse into "+N" (which lists everyone), and a preview's banner
// finds room too.
scenarios.topbar = async (browser, facts) => {
  const id = randomBoardId('topbar')
  const errors = []
  const ctx = await userContext(browser, 'Ada Lovelace', '#4263eb')
  const page = await ctx.newPage()
  watchErrors(page, 'A', errors)
  await openBoard(page, base, id)
  await page.evaluate(() => window.__inkstream.doc.getMap('meta').set('title', 'Quarterly planning — platform and infrastructure'))
  await page.keyboard.press('r')
  await drag(page, 500, 300, 700, 420)
  await page.keyboard.press('p') // the pen: the style panel shows
  const settle = () => page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(resolve, 30)))))
  const WIDTHS = [360, 390, 560, 600, 768, 900, 1000, 1100, 1280, 1600, 2560]
  const SHOTS = new Set(['360:10', '768:10', '1000:3', '1000:10', '1280:10', '2560:10'])
  facts.layouts = []
  for (const people of [1, 3, 6, 10]) {
    await page.evaluate(fakePeers, [id, people - 1, PEER_NAMES])
    await page.waitForFunction((n) => document.querySelector('[data-testid="presence-list"]').dataset.count === String(n), people, { timeout: 10000 })
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: width < 600 ? 780 : 800 })
      await settle()
      const m = await page.evaluate(measureChrome)
      facts.layouts.push({ width, people, ...m })
      if (SHOTS.has(`${width}:${people}`)) await shot(page, `topbar-${width}-${people}-people`)
    }
  }
  // "+N" opens the list of everyone (10 people here)
  await page.setViewportSize({ width: 1000, height: 800 })
  await settle()
  await page.click('[data-testid="presence-more"]')
  facts.peopleMenu = await page.$$eval('[data-testid="people-menu-item"]', (els) => els.length)
  await shot(page, 'topbar-people-menu')
  facts.peopleMenuClosedByEscape = await page.evaluate(() => { window.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape' })); return document.querySelector('[data-testid="people-menu"]').hidden })
  await page.keyboard.press('v')
  await page.mouse.click(640, 600)
  // previewing a version: the banner replaces the toolbar, in the bar or under it
  await page.keyboard.press('h')
  await page.waitForSelector('[data-testid="history-group"]')
  await page.locator('[data-testid="history-slider"]').fill('1')
  await page.waitForFunction(() => window.__inkstream.preview === 1)
  facts.previewLayouts = []
  for (const width of [390, 768, 1000, 1280]) {
    await page.setViewportSize({ width, height: 800 })
    await settle()
    const m = await page.evaluate(measureChrome)
    facts.previewLayouts.push({ width, ...m })
    await shot(page, `topbar-preview-${width}`)
  }
  await page.evaluate(() => { for (const ws of window.__fakePeers || []) ws.close() })
  facts.errors = errors
  await ctx.close()
}

// The home page tells untitled boards apart (by id), an invalid board link says so and offers
// the ways on, and one rectangle drawn with a long drag is one entry in the history panel.
scenarios.polish = async (browser, facts) => {
  const errors = []
  const ctx = await userContext(browser, 'Ada', '#4263eb')
  const page = await ctx.newPage()
  watchErrors(page, 'A', errors)
  // two untitled boards made through the API, and a titled one
  const made = { untitledA: randomBoardId('api-a'), untitledB: randomBoardId('api-b'), titled: randomBoardId('api-t') }
  for (const [k, id] of Object.entries(made)) {
    const doc = new Y.Doc()
    doc.transact(() => {
      const m = new Y.Map()
      for (const [f, v] of Object.entries({ type: 'rect', x: 0, y: 0, w: 100, h: 60, rotation: 0, stroke: '#1e1e2e', fill: '#a5d8ff', width: 2, opacity: 1, font: 24, z: 'a0', createdBy: 'script', createdAt: 1 })) m.set(f, v)
      doc.getMap('shapes').set('s1', m)
      if (k === 'titled') doc.getMap('meta').set('title', 'Launch checklist')
    })
    const r = await fetch(`${base}/api/boards/${id}/updates`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Y.encodeStateAsUpdate(doc) })
    if (!r.ok) throw new Error(`POST updates: ${r.status}`)
  }
  await page.goto(base + '/')
  await page.waitForSelector(`[data-testid="board-card"][data-board-id="${made.titled}"]`)
  const cardTitle = (id) => page.$eval(`[data-testid="board-card"][data-board-id="${id}"] [data-testid="board-card-title"]`, (e) => e.textContent.replace(/\s+/g, ' ').trim())
  facts.cards = { untitledA: await cardTitle(made.untitledA), untitledB: await cardTitle(made.untitledB), titled: await cardTitle(made.titled) }
  facts.made = made
  await page.waitForTimeout(300)
  await shot(page, 'home-untitled-ids')
  await page.setViewportSize({ width: 360, height: 780 })
  facts.homeOverflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth)
  await shot(page, 'home-phone')
  await page.setViewportSize({ width: 1280, height: 800 })

  // an invalid board link
  await page.goto(base + '/b/bad!id')
  await page.waitForSelector('[data-testid="problem"]')
  facts.invalid = {
    heading: (await page.textContent('[data-testid="problem"] h1')).trim(),
    text: (await page.textContent('[data-testid="problem"] p')).replace(/\s+/g, ' ').trim(),
    home: await page.getAttribute('[data-testid="problem-home"]', 'href'),
    title: await page.title()
  }
  await shot(page, 'invalid-board-id')
  await Promise.all([page.waitForURL(/\/b\/[A-Za-z0-9_-]{10}$/), page.click('[data-testid="problem-new-board"]')])
  facts.newBoardFromInvalid = new URL(page.url()).pathname

  // one rectangle, drawn with a slow drag (a version every 50 ms, for live preview), is one entry
  const id = randomBoardId('group')
  await openBoard(page, base, id)
  await page.keyboard.press('r')
  await page.mouse.move(300, 250)
  await page.mouse.down()
  for (let i = 1; i <= 20; i++) { await page.mouse.move(300 + i * 10, 250 + i * 6); await page.waitForTimeout(30) }
  await page.mouse.up()
  await waitFor(async () => (await apiBoard(base, id))?.shapes.length === 1, { what: 'rect on server' })
  const versions = async () => (await (await fetch(`${base}/api/boards/${id}/versions?after=0&limit=1000`)).json())
  const vs = await waitFor(async () => { const v = await versions(); return v.versions.length && v.versions.every((x) => x.summary) && v }, { what: 'versions summarised' })
  facts.versionCount = vs.versions.length
  await page.mouse.click(700, 600)
  await page.keyboard.press('h')
  await page.waitForSelector('[data-testid="history-group"]')
  await waitFor(async () => (await page.textContent('[data-testid="history-group-summary"]')) !== 'saving…', { what: 'group summary' })
  facts.groups = await page.$$eval('[data-testid="history-group"]', (els) => els.map((e) => ({ count: +e.dataset.count, summary: e.querySelector('[data-testid="history-group-summary"]').textContent })))
  facts.expandLabel = (await page.textContent('[data-testid="history-expand"]')).trim()
  await page.click('[data-testid="history-expand"]')
  facts.versionRows = await page.$$eval('[data-testid="history-version"]', (els) => els.map((e) => +e.dataset.version))
  await shot(page, 'history-group-expanded')
  // a row previews its version
  const pick = facts.versionRows[facts.versionRows.length - 2]
  await page.click(`[data-testid="history-version"][data-version="${pick}"]`)
  await page.waitForFunction((v) => window.__inkstream.preview === v, pick)
  facts.previewedRow = await page.evaluate(() => window.__inkstream.preview)
  facts.pickedRow = pick
  facts.errors = errors
  await ctx.close()
}

const browser = await launch()
const results = {}
for (const [name, fn] of Object.entries(scenarios)) {
  if (only.length && !only.includes(name)) continue
  const facts = {}
  const t0 = Date.now()
  try {
    await fn(browser, facts)
    results[name] = { ok: true, ms: Date.now() - t0, ...facts }
  } catch (e) {
    results[name] = { ok: false, ms: Date.now() - t0, error: String(e && e.stack || e), ...facts }
  }
  console.error(`${name}: ${results[name].ok ? 'ok' : 'FAILED'} (${results[name].ms} ms)`)
}
await browser.close()
console.log(JSON.stringify({ results }))
