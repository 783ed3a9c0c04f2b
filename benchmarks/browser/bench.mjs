// Browser speed benchmark for the Inkstream web app.
//
//   cd benchmarks/browser && npm ci && node bench.mjs [BASE_URL] [--shapes 5000] [--runs 3]
//
// Without BASE_URL it starts `inkstream serve` on a free port with a temporary data dir.
// 1. seeds a board with N shapes through POST /api/boards/{id}/updates (a Node Yjs doc,
//    batches of 500 shapes, the app's schema and z keys),
// 2. time to open: navigation start -> first frame rendered with all N shapes (fresh
//    browser context each run, so nothing comes from IndexedDB),
// 3. pan/zoom frame rate: rAF timestamps while wheel events pan / ctrl+wheel zoom every frame,
//    with the whole board in view (worst case) and at 100 %,
// 4. a pen stroke of 200 pointer moves -> Yjs updates and WebSocket frames sent,
// 5. reopen: reload in the same context (the offline copy in IndexedDB), and the whole-board pan
//    again while another client moves a shape 20 times a second (live edits during a gesture).
// Prints a JSON summary (last line) and a human-readable table.
import * as Y from 'yjs'
import { chromium } from 'playwright-core'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { keyBetween } from '../../gateway/web/src/zindex.js'
import { fastStroke } from './fast-stroke.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const opt = (name, d) => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : d }
const N = opt('--shapes', 5000)
const RUNS = opt('--runs', 3)
let base = args.find((a) => /^https?:/.test(a))

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']

function freePort () {
  return new Promise((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)) }) })
}

let server = null
let dataDir = null
async function startServer () {
  const port = await freePort()
  dataDir = mkdtempSync(join(tmpdir(), 'inkstream-bench-'))
  server = spawn('inkstream', ['serve', '--port', String(port), '--data-dir', join(dataDir, 'data'), '--log-level', 'WARNING'], { stdio: ['ignore', 'ignore', 'inherit'] })
  base = `http://127.0.0.1:${port}`
  for (let i = 0; i < 300; i++) {
    try { const r = await fetch(base + '/healthz'); if (r.ok) return } catch {}
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('inkstream serve did not become healthy')
}

// ------------------------------------------------------------------ seeding
function rng (seed) { return () => { seed = (seed * 1664525 + 1013904223) >>> 0; return seed / 2 ** 32 } }
const COLORS = ['#1e1e2e', '#e03131', '#2f9e44', '#1971c2', '#f08c00', '#9c36b5']
const FILLS = ['transparent', '#ffc9c9', '#ffec99', '#b2f2bb', '#a5d8ff', '#eebefa']
const WORDS = ['idea', 'plan', 'ship', 'review', 'design', 'test', 'launch', 'metrics', 'users', 'roadmap']

async function seed (boardId, n) {
  const doc = new Y.Doc()
  const shapes = doc.getMap('shapes')
  const rand = rng(42)
  let z = null
  const cols = Math.ceil(Math.sqrt(n * 1.6))
  let pending = []
  doc.on('update', (u) => pending.push(u))
  let bytes = 0
  const post = async () => {
    const u = Y.mergeUpdates(pending)
    pending = []
    bytes += u.length
    const r = await fetch(`${base}/api/boards/${boardId}/updates`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: u })
    if (!r.ok) throw new Error(`POST updates: ${r.status} ${await r.text()}`)
  }
  doc.transact(() => doc.getMap('meta').set('title', `Benchmark: ${n} shapes`))
  for (let start = 0; start < n; start += 500) {
    doc.transact(() => {
      for (let i = start; i < Math.min(n, start + 500); i++) {
        const gx = (i % cols) * 160; const gy = Math.floor(i / cols) * 130
        const x = gx + rand() * 40; const y = gy + rand() * 30
        const kind = ['rect', 'ellipse', 'stroke', 'text', 'sticky', 'arrow'][i % 6]
        z = keyBetween(z, null)
        const m = new Y.Map()
        const f = {
          type: kind, x, y, w: 100 + rand() * 30, h: 70 + rand() * 20, rotation: 0,
          stroke: COLORS[i % COLORS.length], fill: kind === 'rect' || kind === 'ellipse' ? FILLS[i % FILLS.length] : 'transparent',
          width: 2, opacity: 1, font: 20, z, createdBy: 'bench', createdAt: 1765000000000 + i
        }
        if (kind === 'stroke') {
          const pts = []
          for (let k = 0; k < 24; k++) pts.push(Math.round(k * 5), Math.round(35 + Math.sin(k / 3 + i) * 30))
          f.points = pts; f.w = 115; f.h = 65
        } else if (kind === 'arrow') {
          f.points = [0, 0, 110, 60]; f.w = 110; f.h = 60
        } else if (kind === 'text') {
          f.text = `${WORDS[i % WORDS.length]} #${i}`; f.w = 110; f.h = 25
        } else if (kind === 'sticky') {
          f.fill = '#ffec99'; f.text = `${WORDS[(i * 7) % WORDS.length]} ${WORDS[(i * 3) % WORDS.length]}`; f.w = 110; f.h = 90; f.font = 16
        }
        for (const [k, v] of Object.entries(f)) m.set(k, v)
        shapes.set(`s${i}`, m)
      }
    })
    await post()
  }
  return { bytes }
}

// ------------------------------------------------------------------ browser measurements
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))] }
const median = (a) => pct(a, 50)

async function newPage (browser) {
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } })
  await ctx.addInitScript((n) => {
    window.__inkstreamExpect = n
    localStorage.setItem('inkstream:name', 'Bench')
  }, N)
  return { ctx, page: await ctx.newPage() }
}

async function timeToOpen (browser, boardId) {
  const { ctx, page } = await newPage(browser)
  await page.goto(`${base}/b/${boardId}`)
  await page.waitForFunction(() => performance.getEntriesByName('inkstream:rendered').length > 0, null, { timeout: 60000 })
  const t = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0]
    const mark = (n) => { const e = performance.getEntriesByName('inkstream:' + n)[0]; return e ? Math.round(e.startTime) : null }
    return {
      rendered: performance.getEntriesByName('inkstream:rendered')[0].startTime,
      domContentLoaded: nav ? nav.domContentLoadedEventEnd : null,
      // first sync message in (sync step 2), applied (synced), with the socket index.html opened early?
      syncReceived: mark('sync-received'),
      synced: mark('synced'),
      earlySocket: window.__inkstream.provider.ws?.early === true,
      shapes: window.__inkstream.shapeCount()
    }
  })
  return { ctx, page, ...t }
}

/** Reload in the same context: the board comes from this browser's offline copy (IndexedDB). */
async function timeToReopen (page) {
  await page.waitForTimeout(1500) // let the offline copy be written
  await page.reload()
  await page.waitForFunction(() => performance.getEntriesByName('inkstream:rendered').length > 0, null, { timeout: 60000 })
  return page.evaluate(() => ({
    rendered: performance.getEntriesByName('inkstream:rendered')[0].startTime,
    localLoaded: (performance.getEntriesByName('inkstream:local-loaded')[0] || {}).startTime ?? null,
    earlySocket: window.__inkstream.provider.ws?.early === true
  }))
}

/** Another client moves one shape 20 times a second (POST /updates) until stop() — live edits during a gesture. */
function remoteEditor (boardId) {
  const doc = new Y.Doc()
  let stopped = false
  let sent = 0
  const run = (async () => {
    const r = await fetch(`${base}/api/boards/${boardId}/state`)
    Y.applyUpdate(doc, new Uint8Array(await r.arrayBuffer()))
    const m = doc.getMap('shapes').get('s0')
    let pending = []
    doc.on('update', (u) => pending.push(u))
    for (let i = 0; !stopped; i++) {
      doc.transact(() => { m.set('x', 10 + (i % 40) * 20); m.set('y', 5 + (i % 7) * 10) })
      const u = Y.mergeUpdates(pending); pending = []
      await fetch(`${base}/api/boards/${boardId}/updates`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'x-inkstream-user': 'bench-remote' }, body: u })
      sent++
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })()
  return { stop: async () => { stopped = true; await run; return sent } }
}

/** Drive `frames` animation frames, dispatching one wheel event per frame; returns frame stats. */
async function animate (page, mode, frames = 180) {
  return page.evaluate(([mode, frames]) => new Promise((resolve) => {
    const canvas = document.querySelector('[data-testid="board-canvas"]')
    const stats = window.__inkstream.stats
    const times = []; const renderMs = []
    let i = 0; let lastFrames = stats.frames
    const step = (ts) => {
      times.push(ts)
      if (stats.frames !== lastFrames) { renderMs.push(stats.lastMs); lastFrames = stats.frames }
      if (i++ >= frames) {
        const dts = times.slice(1).map((t, k) => t - times[k])
        resolve({ dts, renderMs, visible: stats.visible, times })
        return
      }
      if (mode === 'idle') { requestAnimationFrame(step); return }
      const r = canvas.getBoundingClientRect()
      const ev = mode === 'zoom'
        ? { deltaY: (Math.floor(i / 45) % 2 ? 1 : -1) * 8, ctrlKey: true }
        : { deltaX: Math.cos(i / 15) * 12, deltaY: Math.sin(i / 15) * 12 }
      canvas.dispatchEvent(new WheelEvent('wheel', { ...ev, clientX: r.width / 2, clientY: r.height / 2, bubbles: true, cancelable: true }))
      requestAnimationFrame(step)
    }
    requestAnimationFrame(step)
  }), [mode, frames])
}

function frameSummary (r) {
  const total = r.dts.reduce((a, b) => a + b, 0)
  return {
    fps: +(r.dts.length / (total / 1000)).toFixed(1),
    frameMsP50: +median(r.dts).toFixed(1),
    frameMsP95: +pct(r.dts, 95).toFixed(1),
    renderMsP50: r.renderMs.length ? +median(r.renderMs).toFixed(2) : null,
    renderMsP95: r.renderMs.length ? +pct(r.renderMs, 95).toFixed(2) : null,
    visibleShapes: r.visible
  }
}

async function strokeUpdates (browser, boardId) {
  const { ctx, page } = await newPage(browser)
  let framesSent = 0
  page.on('websocket', (ws) => ws.on('framesent', (f) => { if (typeof f.payload !== 'string' && f.payload[0] === 0) framesSent++ }))
  await page.goto(`${base}/b/${boardId}`)
  await page.waitForFunction(() => window.__inkstream && document.body.dataset.synced === 'true')
  await page.keyboard.press('p')
  const before = await page.evaluate(() => window.__inkstream.updatesSent)
  const framesBefore = framesSent
  const moves = 200
  const t0 = Date.now()
  await page.mouse.move(300, 400)
  await page.mouse.down()
  for (let i = 0; i < moves; i++) await page.mouse.move(300 + i * 4, 400 + Math.sin(i / 8) * 80)
  await page.mouse.up()
  const ms = Date.now() - t0
  await page.waitForTimeout(300)
  const updates = await page.evaluate((b) => window.__inkstream.updatesSent - b, before)
  // fast input: a 250 Hz pointer, 500 moves dispatched in the page
  const fast = await page.evaluate(fastStroke, 500)
  await ctx.close()
  return { pointerMoves: moves, strokeMs: ms, yjsUpdates: updates, syncFramesSent: framesSent - framesBefore, fast }
}

/**
 * `--zoom-ab DIR,DIR,...`: the whole-board zoom test only, for app builds kept in those
 * directories (copies of gateway/static/app), alternating in one browser against one server and
 * board (`--runs` rounds), so builds are compared under the same machine load. Prints each
 * build's fps and frame-time distribution over all rounds.
 */
async function zoomAB (browser, boardId, dirs) {
  const { readFileSync } = await import('node:fs')
  const all = dirs.map(() => ({ dts: [], fps: [], builds: 0, buildMs: 0 }))
  const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
  console.log(`load before: ${load()}`)
  for (let r = 0; r < RUNS; r++) {
    for (let d = 0; d < dirs.length; d++) {
      const { ctx, page } = await newPage(browser)
      if (dirs[d] !== 'served') await ctx.route(/\/(b\/[^/]+|static\/app\/[^/]+)$/, (route) => {
        const u = new URL(route.request().url())
        const file = u.pathname.startsWith('/b/') ? 'index.html' : u.pathname.split('/').pop()
        const type = file.endsWith('.js') ? 'text/javascript' : file.endsWith('.css') ? 'text/css' : 'text/html'
        route.fulfill({ status: 200, contentType: type, body: readFileSync(join(dirs[d], file)) })
      })
      page.on('pageerror', (e) => console.log('pageerror', e.message))
      page.on('console', (m) => { if (m.type() === 'error' || process.env.ZAB_DEBUG) console.log('console', m.text()) })
      if (process.env.ZAB_DEBUG) { page.on('requestfailed', (q) => console.log('failed', q.url())); page.on('websocket', (w) => console.log('ws', w.url())) }
      await page.goto(`${base}/b/${boardId}`)
      await page.waitForFunction(() => performance.getEntriesByName('inkstream:rendered').length > 0, null, { timeout: 60000 })
        .catch(async (e) => { console.log(await page.evaluate(() => [location.href, document.title, window.__inkstream?.shapeCount()])); throw e })
      await page.evaluate(() => window.__inkstream.zoomToFit())
      await page.waitForTimeout(500)
      const s0 = await page.evaluate(() => ({ ...window.__inkstream.stats }))
      const z = await animate(page, 'zoom')
      const s1 = await page.evaluate(() => ({ ...window.__inkstream.stats }))
      const f = frameSummary(z)
      if (process.env.ZAB_DUMP) (await import('node:fs')).writeFileSync(`${process.env.ZAB_DUMP}-${d}-${r}.json`, JSON.stringify({ times: z.times, fr: await page.evaluate(() => window.__inkstream.stats.fr || []) }))
      all[d].dts.push(...z.dts); all[d].fps.push(f.fps)
      all[d].builds += (s1.cacheBuilds || 0) - (s0.cacheBuilds || 0); all[d].buildMs += (s1.buildMs || 0) - (s0.buildMs || 0)
      console.log(`round ${r + 1} ${dirs[d]}: ${f.fps} fps p50 ${f.frameMsP50} p95 ${f.frameMsP95} max ${Math.max(...z.dts).toFixed(1)} ms  builds ${(s1.cacheBuilds || 0) - (s0.cacheBuilds || 0)} (${((s1.buildMs || 0) - (s0.buildMs || 0)).toFixed(0)} ms)${s1.forced !== undefined ? ` forced ${(s1.forced || 0) - (s0.forced || 0)} blit ${((s1.blitMs || 0) - (s0.blitMs || 0)).toFixed(0)} ms` : ''}  long frames ${z.dts.map((t, k) => [k, t]).filter(([, t]) => t > 20).map(([k, t]) => `${k}:${t.toFixed(0)}`).join(' ')}  (load ${load()})`)
      await ctx.close()
    }
  }
  for (let d = 0; d < dirs.length; d++) {
    const a = all[d]
    const total = a.dts.reduce((x, y) => x + y, 0)
    const over = (ms) => a.dts.filter((t) => t > ms).length
    console.log(`${dirs[d]}: ${(a.dts.length / (total / 1000)).toFixed(1)} fps over ${RUNS} rounds (per round ${a.fps.join(', ')}); frame p50 ${pct(a.dts, 50).toFixed(1)} p95 ${pct(a.dts, 95).toFixed(1)} p99 ${pct(a.dts, 99).toFixed(1)} max ${Math.max(...a.dts).toFixed(1)} ms; frames > 20 ms: ${over(20)}, > 34 ms: ${over(34)} of ${a.dts.length}; scene-cache builds ${a.builds} (${a.buildMs.toFixed(0)} ms JS)`)
  }
  console.log(`load after: ${load()}`)
  await browser.close()
  if (server) { server.kill('SIGTERM'); rmSync(dataDir, { recursive: true, force: true }) }
}

// ------------------------------------------------------------------ main
if (!base) { await startServer(); process.on('exit', () => server.kill('SIGKILL')) }
const boardId = `bench-${N}-${Date.now().toString(36)}`
const t0 = Date.now()
const { bytes } = await seed(boardId, N)
const seedMs = Date.now() - t0
// let the server finish folding/checkpointing the seed before timing opens
await new Promise((r) => setTimeout(r, 3000))
// pages served from a directory (--zoom-ab) count as public: let them reach the local server
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: [...CHROMIUM_ARGS, ...(args.includes('--zoom-ab') ? ['--disable-features=LocalNetworkAccessChecks'] : [])], headless: true })
if (args.includes('--zoom-ab')) { await zoomAB(browser, boardId, args[args.indexOf('--zoom-ab') + 1].split(',')); process.exit(0) }
const opens = []
let kept = null
for (let r = 0; r < RUNS; r++) {
  const o = await timeToOpen(browser, boardId)
  opens.push(o)
  if (r < RUNS - 1) await o.ctx.close(); else kept = o
}
const page = kept.page
const reopens = []
for (let r = 0; r < Math.max(1, Math.min(RUNS, 3)); r++) reopens.push(await timeToReopen(page))
// whole board in view (all N shapes drawn every frame)
await page.evaluate(() => window.__inkstream.zoomToFit())
await page.waitForTimeout(300)
const idle = frameSummary(await animate(page, 'idle'))
const panFit = frameSummary(await animate(page, 'pan'))
const zoomFit = frameSummary(await animate(page, 'zoom'))
// the same pan while another client edits the board 20 times a second
await page.evaluate(() => window.__inkstream.zoomToFit())
await page.waitForTimeout(300)
const editor = remoteEditor(boardId)
await page.waitForTimeout(500)
const patches0 = await page.evaluate(() => window.__inkstream.stats.cachePatches || 0)
const panLive = frameSummary(await animate(page, 'pan'))
panLive.remoteUpdates = await editor.stop()
panLive.cachePatches = await page.evaluate((p0) => (window.__inkstream.stats.cachePatches || 0) - p0, patches0)
await page.screenshot({ path: join(HERE, 'bench-fit.png') })
// 100 % zoom in the middle of the board
await page.evaluate(() => { const c = window.__inkstream.camera; window.__inkstream.setCamera({ zoom: 1, x: 3000, y: 2000 }) })
await page.waitForTimeout(300)
const pan100 = frameSummary(await animate(page, 'pan'))
const zoom100 = frameSummary(await animate(page, 'zoom'))
await page.screenshot({ path: join(HERE, 'bench-100.png') })
await kept.ctx.close()
const stroke = await strokeUpdates(browser, `${boardId}-stroke`)
await browser.close()

const summary = {
  shapes: N,
  seed: { ms: seedMs, updateBytes: bytes },
  openMs: { runs: opens.map((o) => Math.round(o.rendered)), median: Math.round(median(opens.map((o) => o.rendered))) },
  openBreakdownMs: { domContentLoaded: Math.round(median(opens.map((o) => o.domContentLoaded))), syncReceived: median(opens.map((o) => o.syncReceived)), synced: median(opens.map((o) => o.synced)), earlySocket: opens.every((o) => o.earlySocket) },
  reopenMs: { runs: reopens.map((o) => Math.round(o.rendered)), median: Math.round(median(reopens.map((o) => o.rendered))), fromOfflineCopy: reopens.every((o) => o.localLoaded !== null && !o.earlySocket) },
  domContentLoadedMs: Math.round(median(opens.map((o) => o.domContentLoaded))),
  idleBaseline: idle,
  panAllVisible: panFit,
  zoomAllVisible: zoomFit,
  panAllVisibleLiveEdits: panLive,
  pan100: pan100,
  zoom100: zoom100,
  stroke
}
console.log(`\nInkstream web app — ${N} shapes (${(bytes / 1024).toFixed(0)} KiB of Yjs updates), Chromium ${browser.version?.() || ''}`)
console.log(`open (navigation -> all shapes rendered): median ${summary.openMs.median} ms  runs ${summary.openMs.runs.join(', ')} ms`)
console.log(`  medians: DOMContentLoaded ${summary.openBreakdownMs.domContentLoaded} ms, first sync in ${summary.openBreakdownMs.syncReceived} ms, applied ${summary.openBreakdownMs.synced} ms (early socket: ${summary.openBreakdownMs.earlySocket})`)
console.log(`reopen (reload, offline copy): median ${summary.reopenMs.median} ms  runs ${summary.reopenMs.runs.join(', ')} ms`)
for (const [k, v] of Object.entries({ 'idle rAF (baseline)': idle, 'pan, whole board in view': panFit, 'zoom, whole board in view': zoomFit, 'pan, all in view, live edits': panLive, 'pan at 100%': pan100, 'zoom at 100%': zoom100 })) {
  console.log(`${k.padEnd(30)} ${String(v.fps).padStart(5)} fps  frame p50 ${v.frameMsP50} ms p95 ${v.frameMsP95} ms  render p50 ${v.renderMsP50} ms p95 ${v.renderMsP95} ms  (${v.visibleShapes} visible)`)
}
console.log(`stroke (Playwright mouse): ${stroke.pointerMoves} pointer moves over ${stroke.strokeMs} ms -> ${stroke.yjsUpdates} Yjs updates, ${stroke.syncFramesSent} sync frames sent`)
console.log(`stroke (250 Hz pointer):   ${stroke.fast.moves} pointer moves over ${stroke.fast.ms} ms -> ${stroke.fast.updates} Yjs updates`)
console.log(JSON.stringify(summary))
if (server) { server.kill('SIGTERM'); rmSync(dataDir, { recursive: true, force: true }) }
