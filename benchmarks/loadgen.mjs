#!/usr/bin/env node
// Live-delivery load generator: N boards x M real y-websocket clients x R updates/s per client.
//
//   node benchmarks/loadgen.mjs --url ws://127.0.0.1:8000/ws --boards 20 --clients 5 --rate 10 \
//        --duration 30 [--drain 20] [--prefix run1] [--label inkstream] [--samples FILE]
//
// Every update is one transaction on root Y.Map `lg`: key `${from}:${seq}` -> {t, from, seq}, `t`
// the send time (performance.timeOrigin + performance.now(); one process, so one clock). Every
// other client of the board records t_receive - t when the update arrives. After the run, sending
// stops and each client must end up holding every update of its board; what is still missing
// after the drain period is counted as lost. Prints one JSON object on stdout; --samples also writes
// every latency sample (ms, float32 little-endian) to FILE, so runs can be pooled (benchmarks/run.py).
//
// Load-generator cost: all clients share one Node process and one event loop (the machine has
// 2 cores that the server under test also needs). We report the generator's CPU use and its
// event-loop lag so a latency number can be told apart from a generator that fell behind.
// Needs `npm ci` in tests/js (the Yjs stack is imported from there).
//
// Its own garbage collector was most of every server's latency tail: the clients' Y.Docs keep
// every update (~100 MB after 30 s), so V8 ran a major GC every ~3 s, and its incremental marking
// steps (up to 24 ms each) delayed the deliveries then in flight by 20-150 ms -- bursts that decided
// a round's p99 for whichever server happened to be measured (traced with --trace-gc: every burst
// of late deliveries lined up with a Mark-Compact). So the generator runs itself with an old space
// big enough for a run (no major GC in 30 s) and a larger young generation (fewer scavenges).

import { parseArgs } from 'node:util'
import { writeFileSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { monitorEventLoopDelay } from 'node:perf_hooks'

const HEAP_FLAGS = ['--initial-old-space-size=1024', '--max-semi-space-size=32']
if (!process.execArgv.some((a) => a.startsWith('--initial-old-space-size'))) {
  // V8 sizes its heap at start-up only: run again with the flags, passing signals and the exit status on.
  const child = spawn(process.execPath, [...HEAP_FLAGS, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' })
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
  const code = await new Promise((resolve) => child.on('exit', (status, signal) => resolve(status ?? (signal ? 1 : 0))))
  process.exit(code)
}

process.setMaxListeners(0) // every WebsocketProvider adds a process 'exit' listener
const { Y, WebsocketProvider, WebSocket } = await import(new URL('../tests/js/deps.mjs', import.meta.url))

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    boards: { type: 'string', default: '20' },
    clients: { type: 'string', default: '5' },
    rate: { type: 'string', default: '10' },
    duration: { type: 'string', default: '30' },
    drain: { type: 'string', default: '20' },
    'sync-timeout': { type: 'string', default: '60' },
    prefix: { type: 'string', default: `lg${Date.now().toString(36)}` },
    label: { type: 'string', default: '' },
    samples: { type: 'string' }
  }
})
if (!opt.url) {
  console.error('usage: loadgen.mjs --url ws://HOST:PORT[/ws] [--boards N --clients M --rate R --duration S]')
  process.exit(2)
}
const BOARDS = Number(opt.boards)
const CLIENTS = Number(opt.clients)
const RATE = Number(opt.rate)
const DURATION_MS = Number(opt.duration) * 1000
const DRAIN_MS = Number(opt.drain) * 1000
const SYNC_TIMEOUT_MS = Number(opt['sync-timeout']) * 1000

const now = () => performance.timeOrigin + performance.now()
const log = (...a) => console.error(`[loadgen ${opt.label}]`, ...a)

// Latency samples (ms), grown as needed.
let lat = new Float64Array(1 << 16)
let nlat = 0
const record = (ms) => {
  if (nlat === lat.length) { const bigger = new Float64Array(lat.length * 2); bigger.set(lat); lat = bigger }
  lat[nlat++] = ms
}
// --url may list several gateways (comma-separated): client c of each board uses URLS[c % n], and
// deliveries between clients on different gateways are also reported on their own (cross_*), and those
// between clients of the same gateway (local_*).
const URLS = opt.url.split(',')
const cross = []
const local = []

const clients = []
for (let b = 0; b < BOARDS; b++) {
  for (let c = 0; c < CLIENTS; c++) {
    const doc = new Y.Doc()
    const map = doc.getMap('lg')
    const name = `b${b}c${c}`
    const gw = c % URLS.length
    const client = { board: b, name, doc, map, provider: null, sent: 0, closes: 0, syncedAt: null, gw }
    map.observe((event, tr) => {
      if (tr.local) return
      const t = now()
      for (const key of event.keysChanged) {
        const v = map.get(key)
        if (v && typeof v.t === 'number') {
          record(t - v.t)
          if (v.g !== undefined) (v.g !== gw ? cross : local).push(t - v.t)
        }
      }
    })
    clients.push(client)
  }
}

// Connect everyone, staggered a little so the server sees a realistic join wave, not one instant.
const joinStart = now()
for (const client of clients) {
  const room = `${opt.prefix}-board-${client.board}`
  client.provider = new WebsocketProvider(URLS[client.gw], room, client.doc, { WebSocketPolyfill: WebSocket, disableBc: true })
  client.provider.on('connection-close', () => { client.closes++ })
  client.provider.on('sync', (synced) => { if (synced && client.syncedAt === null) client.syncedAt = now() })
  await new Promise((resolve) => setTimeout(resolve, 2))
}
const syncDeadline = now() + SYNC_TIMEOUT_MS
while (clients.some((c) => c.syncedAt === null) && now() < syncDeadline) {
  await new Promise((resolve) => setTimeout(resolve, 20))
}
const unsynced = clients.filter((c) => c.syncedAt === null).length
const joinMs = clients.filter((c) => c.syncedAt !== null).map((c) => c.syncedAt - joinStart)
log(`${clients.length - unsynced}/${clients.length} clients synced in ${Math.max(0, ...joinMs).toFixed(0)} ms`)
for (const c of clients) c.closes = 0 // count only disconnects during the measured run

// Send phase: one timer drives every client; each client's sends are evenly spaced with its own phase.
const loopDelay = monitorEventLoopDelay({ resolution: 10 })
loopDelay.enable()
const cpu0 = process.cpuUsage()
const wall0 = now()
const interval = 1000 / RATE
const sendStart = now()
clients.forEach((c, i) => { c.next = sendStart + (interval * i) / clients.length })
let behind = 0 // sends that went out more than one interval late (generator overloaded)
await new Promise((resolve) => {
  const tick = () => {
    const t = now()
    if (t - sendStart >= DURATION_MS) return resolve()
    for (const c of clients) {
      while (c.next <= t && c.next - sendStart < DURATION_MS) {
        if (t - c.next > interval) behind++
        const seq = c.sent++
        c.map.set(`${c.name}:${seq}`, URLS.length > 1 ? { t: now(), from: c.name, seq, g: c.gw } : { t: now(), from: c.name, seq })
        c.next += interval
      }
    }
    setTimeout(tick, 2)
  }
  tick()
})
const sendMs = now() - sendStart

// Drain: wait until every client holds every update of its board (or the deadline).
const expectedPerBoard = new Array(BOARDS).fill(0)
for (const c of clients) expectedPerBoard[c.board] += c.sent
const missingOf = (c) => expectedPerBoard[c.board] - c.map.size
const drainDeadline = now() + DRAIN_MS
while (clients.some((c) => missingOf(c) > 0) && now() < drainDeadline) {
  await new Promise((resolve) => setTimeout(resolve, 20))
}
const cpu = process.cpuUsage(cpu0)
const wallMs = now() - wall0
loopDelay.disable()

// Exact completeness check: every (sender, seq) key at every client of the board.
let lost = 0
let clientsMissing = 0
for (const c of clients) {
  let missing = 0
  for (const s of clients) {
    if (s.board !== c.board) continue
    for (let q = 0; q < s.sent; q++) if (!c.map.has(`${s.name}:${q}`)) missing++
  }
  lost += missing
  if (missing) clientsMissing++
}

const sorted = lat.subarray(0, nlat).sort()
if (opt.samples) writeFileSync(opt.samples, new Float32Array(sorted))
const pct = (p) => (nlat ? sorted[Math.min(nlat - 1, Math.floor((p / 100) * nlat))] : null)
const sent = clients.reduce((a, c) => a + c.sent, 0)
const result = {
  label: opt.label,
  url: opt.url,
  boards: BOARDS,
  clients_per_board: CLIENTS,
  rate_per_client: RATE,
  duration_s: Math.round(sendMs / 100) / 10,
  clients_synced: clients.length - unsynced,
  clients_total: clients.length,
  join_all_ms: joinMs.length ? Math.round(Math.max(...joinMs)) : null,
  sent,
  expected_deliveries: sent * (CLIENTS - 1),
  latency_samples: nlat,
  lost,
  clients_missing_updates: clientsMissing,
  disconnects: clients.reduce((a, c) => a + c.closes, 0),
  p50_ms: pct(50),
  p95_ms: pct(95),
  p99_ms: pct(99),
  max_ms: nlat ? sorted[nlat - 1] : null,
  mean_ms: nlat ? sorted.reduce((a, x) => a + x, 0) / nlat : null,
  loadgen_cpu_pct: Math.round((100 * (cpu.user + cpu.system)) / 1000 / wallMs),
  loadgen_loop_lag_p99_ms: loopDelay.percentile(99) / 1e6,
  loadgen_late_sends: behind
}
if (URLS.length > 1) {
  cross.sort((a, b) => a - b)
  const cpct = (p) => (cross.length ? cross[Math.min(cross.length - 1, Math.floor((p / 100) * cross.length))] : null)
  Object.assign(result, { gateways: URLS.length, cross_samples: cross.length, cross_p50_ms: cpct(50), cross_p99_ms: cpct(99), cross_max_ms: cross.length ? cross[cross.length - 1] : null })
  local.sort((a, b) => a - b)
  const lpct = (p) => (local.length ? local[Math.min(local.length - 1, Math.floor((p / 100) * local.length))] : null)
  Object.assign(result, { local_samples: local.length, local_p50_ms: lpct(50), local_p99_ms: lpct(99), local_max_ms: local.length ? local[local.length - 1] : null })
}
log(JSON.stringify(result))
process.stdout.write(JSON.stringify(result) + '\n')
for (const c of clients) c.provider.destroy()
process.exit(0)
