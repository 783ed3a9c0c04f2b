// The history panel: a timeline over the board's versions (GET /api/boards/{id}/versions),
// read-only previews of any version (GET /api/boards/{id}?version=V), restore and fork.
// The board owns the canvas; this module only tells it what to show (`enterPreview` with the
// version's shapes, `exitPreview` to go back to the live document).
import { h, toast, relativeTime } from './ui.js'
import { icon } from './icons.js'
import { plainShape, compareZ, randomId } from './model.js'
import { USER_COLORS, initials } from './user.js'

const PAGE = 200
const GROUP_GAP_MS = 5 * 60 * 1000 // one author's versions less than 5 minutes apart form one group
const SLIDE_MS = 140 // debounce of slider previews
const VERSIONS_LISTED = 100 // an expanded group lists at most this many of its versions

export function nameColor (name) {
  if (!name || name === 'anonymous') return '#868e96'
  let x = 0
  for (const ch of String(name)) x = (x * 31 + ch.codePointAt(0)) >>> 0
  return USER_COLORS[x % USER_COLORS.length]
}

function clockTime (t) {
  return new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
}
function secondsTime (t) {
  return new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
}
function dayLabel (t) {
  const d = new Date(t); const now = new Date()
  const day = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime()
  const diff = Math.round((day(now) - day(d)) / 86400000)
  if (diff === 0) return 'Today'
  if (diff === 1) return 'Yesterday'
  return d.toLocaleDateString(undefined, { weekday: 'short', month: 'short', day: 'numeric', year: d.getFullYear() === now.getFullYear() ? undefined : 'numeric' })
}
function plural (n, one, many = one + 's') { return `${n} ${n === 1 ? one : many}` }

export function describeSummary (s) {
  if (!s) return 'saving…'
  const bits = []
  if (s.added) bits.push(`${s.added} added`)
  if (s.changed) bits.push(`${s.changed} edited`)
  if (s.removed) bits.push(`${s.removed} removed`)
  if (s.meta) bits.push('title changed')
  return bits.length ? bits.join(' · ') : 'no visible change'
}

/**
 * Consecutive versions (newest first) by one author, less than GROUP_GAP_MS apart. A drag sends
 * a version every 50 ms so others see it live; grouped, one rectangle is one entry ("1 added"),
 * not "1 added · 4 edited": a group's summary is its net effect on shapes, by id (a shape added
 * and then edited in the group counts as added; added and then removed, as both). Where a
 * version lists only the first ids (the API keeps 50), the group falls back to summed counts.
 */
export function groupVersions (versions) {
  const out = []
  for (const v of versions) {
    const t = Date.parse(v.time)
    const g = out[out.length - 1]
    if (g && g.user === v.user && g.oldestT - t <= GROUP_GAP_MS && g.first === v.version + 1) {
      g.first = v.version; g.oldestT = t; g.count++; g.versions.push(v)
    } else {
      out.push({ user: v.user, first: v.version, last: v.version, newestT: t, oldestT: t, count: 1, versions: [v], added: 0, changed: 0, removed: 0, meta: false, pending: false })
    }
  }
  for (const g of out) Object.assign(g, netSummary(g.versions))
  return out
}

/** The net effect of `versions` (newest first) on shapes: counts of added, edited, removed. */
export function netSummary (versions) {
  const added = new Set(); const changed = new Set(); const removed = new Set()
  const sum = { added: 0, changed: 0, removed: 0 }
  let exact = true; let meta = false; let pending = false
  for (let i = versions.length - 1; i >= 0; i--) {
    const s = versions[i].summary
    if (!s) { pending = true; continue }
    const ids = (k) => (Array.isArray(s[k + '_ids']) ? s[k + '_ids'] : [])
    for (const k of ['added', 'changed', 'removed']) {
      sum[k] += s[k] || 0
      if (ids(k).length < (s[k] || 0)) exact = false
    }
    for (const id of ids('added')) { if (removed.delete(id)) changed.add(id); else added.add(id) }
    for (const id of ids('changed')) if (!added.has(id)) changed.add(id)
    for (const id of ids('removed')) { changed.delete(id); removed.add(id) }
    meta = meta || !!s.meta
  }
  const counts = exact ? { added: added.size, changed: changed.size, removed: removed.size } : sum
  return { ...counts, meta, pending }
}

/**
 * hooks: getUser() -> display name; flush() writes pending local edits;
 * enterPreview(version, shapes, info); exitPreview(); navigate(url).
 */
export function createHistory (boardId, hooks) {
  const api = `/api/boards/${encodeURIComponent(boardId)}`
  let versions = [] // loaded, newest first, contiguous from `latest` down
  let latest = 0
  let older = null // {before: V} while older pages remain
  let previewing = null // the version shown, or null for the live board
  let isOpen = false
  let busy = false
  let failed = ''
  let loadSeq = 0
  let previewSeq = 0
  let slideTimer = 0
  let refreshTimer = 0
  const infoCache = new Map() // version -> version info, for versions outside the loaded pages
  const expanded = new Set() // groups (by their first version) whose versions are listed

  const slider = h('input', { type: 'range', class: 'hp-slider', min: '1', max: '1', step: '1', value: '1', 'aria-label': 'Board version', 'data-testid': 'history-slider', disabled: true })
  const posTitle = h('div', { class: 'hp-pos-title', 'data-testid': 'history-position' })
  const posSub = h('div', { class: 'hp-pos-sub' })
  const restoreBtn = h('button', { class: 'btn btn-primary', 'data-testid': 'history-restore', html: icon('restore', 16) + '<span>Restore this version</span>', onclick: () => restore() })
  const forkBtn = h('button', { class: 'btn', 'data-testid': 'history-fork', html: icon('fork', 16) + '<span>Fork from here</span>', onclick: () => forkHere() })
  const hint = h('p', { class: 'hp-hint' })
  const list = h('div', { class: 'hp-list', role: 'list', 'data-testid': 'history-list', 'aria-label': 'Versions by author and time' })
  const moreBtn = h('button', { class: 'btn hp-more', hidden: true, 'data-testid': 'history-more', onclick: () => loadOlder() }, 'Load older versions')
  const closeBtn = h('button', { class: 'icon-btn', 'aria-label': 'Close version history (H)', 'data-tip': 'Close — H', 'data-testid': 'history-close', html: icon('x', 18), onclick: () => close() })
  const panel = h('aside', { class: 'history-panel', 'data-testid': 'history-panel', 'aria-label': 'Version history', hidden: true },
    h('div', { class: 'hp-head' },
      h('div', { class: 'hp-title' }, h('span', { class: 'hp-title-icon', html: icon('history', 18) }), h('span', {}, 'Version history')),
      closeBtn),
    h('div', { class: 'hp-timeline' },
      h('div', { class: 'hp-pos' }, posTitle, posSub),
      slider,
      h('div', { class: 'hp-scale', 'aria-hidden': 'true' }, h('span', {}, 'First version'), h('span', {}, 'Live'))),
    h('div', { class: 'hp-actions' }, restoreBtn, forkBtn),
    hint,
    h('div', { class: 'hp-scroll' }, list, moreBtn))

  slider.addEventListener('input', () => {
    const v = Number(slider.value)
    renderPosition(v)
    clearTimeout(slideTimer)
    slideTimer = setTimeout(() => (v >= latest ? goLive() : preview(v)), SLIDE_MS)
  })

  // ------------------------------------------------------------ loading
  async function getJson (url, init) {
    const r = await fetch(url, { headers: { accept: 'application/json' }, ...init })
    const body = await r.json().catch(() => ({}))
    if (!r.ok) throw new Error(body.detail || body.error || `${r.status} ${r.statusText}`)
    return body
  }
  async function loadNewest () {
    const seq = ++loadSeq
    try {
      const head = await getJson(`${api}/versions?after=0&limit=1`)
      const top = head.latest || 0
      const page = top ? await getJson(`${api}/versions?before=${top + 1}&limit=${PAGE}`) : { versions: [], next: null, latest: 0 }
      if (seq !== loadSeq) return
      versions = page.versions
      older = page.next
      setLatest(Math.max(top, page.latest || 0))
      failed = ''
    } catch (e) {
      if (seq !== loadSeq) return
      failed = navigator.onLine === false ? 'History needs a connection to the server — you are offline.' : `Could not load the history: ${e.message}`
    }
    render()
    if (versions.some((v) => !v.summary)) refreshSoon(1500)
  }
  async function loadOlder () {
    if (!older || !older.before) return
    moreBtn.disabled = true
    try {
      const page = await getJson(`${api}/versions?before=${older.before}&limit=${PAGE}`)
      const have = new Set(versions.map((v) => v.version))
      versions = versions.concat(page.versions.filter((v) => !have.has(v.version)))
      older = page.next
    } catch (e) {
      toast(`Could not load older versions: ${e.message}`, { kind: 'error' })
    }
    moreBtn.disabled = false
    render()
  }
  /** New versions since the newest loaded (and re-read the ones the projector had not summarised). */
  async function refresh () {
    refreshTimer = 0
    if (!isOpen) return
    if (!versions.length) { loadNewest(); return }
    let after = versions[0].version
    for (const v of versions) if (!v.summary) after = Math.min(after, v.version - 1)
    const seq = loadSeq
    try {
      const page = await getJson(`${api}/versions?after=${after}&limit=${PAGE}`)
      if (seq !== loadSeq) return
      if (page.next) { loadNewest(); return } // far behind: start over from the newest page
      const fresh = page.versions.slice().reverse()
      versions = fresh.concat(versions.filter((v) => v.version <= after))
      setLatest(page.latest || latest)
      failed = ''
      render()
      if (versions.some((v) => !v.summary)) refreshSoon(1500)
    } catch {}
  }
  function refreshSoon (ms = 600) {
    if (!isOpen || refreshTimer) return
    refreshTimer = setTimeout(refresh, ms)
  }
  function setLatest (n) {
    latest = n
    slider.max = String(Math.max(1, latest))
    slider.disabled = latest < 2
    if (previewing === null) slider.value = String(latest)
  }

  // ------------------------------------------------------------ preview / live
  function infoFor (v) {
    return versions.find((x) => x.version === v) || infoCache.get(v) || null
  }
  async function fetchInfo (v) {
    if (infoFor(v)) return
    try {
      const page = await getJson(`${api}/versions?after=${v - 1}&limit=1`)
      if (page.versions[0]) infoCache.set(v, page.versions[0])
      if (previewing === v) { renderPosition(v); hooks.enterPreview(v, null, infoFor(v)) }
    } catch {}
  }
  async function preview (v) {
    v = Math.max(1, Math.min(v, latest || v))
    const seq = ++previewSeq
    renderPosition(v)
    try {
      const data = await getJson(`${api}?version=${v}`)
      if (seq !== previewSeq) return
      const shapes = (data.shapes || []).map(plainShape).sort(compareZ)
      previewing = v
      slider.value = String(v)
      hooks.enterPreview(v, shapes, infoFor(v), data.meta || {})
      fetchInfo(v)
    } catch (e) {
      if (seq === previewSeq) toast(`Could not load version ${v}: ${e.message}`, { kind: 'error' })
    }
    render()
  }
  function goLive () {
    ++previewSeq
    clearTimeout(slideTimer)
    const was = previewing
    previewing = null
    slider.value = String(latest)
    if (was !== null) hooks.exitPreview()
    render()
  }

  // ------------------------------------------------------------ actions
  async function restore () {
    if (previewing === null || busy) return
    const v = previewing
    busy = true
    render()
    try {
      hooks.flush()
      const body = await getJson(`${api}/restore?user=${encodeURIComponent(hooks.getUser())}`, {
        method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ version: v })
      })
      goLive()
      const t = toast(body.changed
        ? `Restored version ${v} as version ${body.version}. Nothing is lost: the versions in between stay in the history.`
        : `The board already looks like version ${v}.`, { kind: 'success', timeout: 6000 })
      t.dataset.testid = 'restore-report'
      refreshSoon(300)
    } catch (e) {
      toast(`Could not restore version ${v}: ${e.message}`, { kind: 'error' })
    }
    busy = false
    render()
  }
  async function forkHere () {
    const v = previewing ?? latest
    if (!v || busy) return
    busy = true
    render()
    const id = randomId(10)
    try {
      hooks.flush()
      await getJson(`${api}/fork?user=${encodeURIComponent(hooks.getUser())}`, {
        method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ version: v, id })
      })
      try { sessionStorage.setItem('inkstream:forked:' + id, JSON.stringify({ from: boardId, version: v })) } catch {}
      hooks.navigate(`/b/${encodeURIComponent(id)}`)
    } catch (e) {
      toast(`Could not fork version ${v}: ${e.message}`, { kind: 'error' })
      busy = false
      render()
    }
  }

  // ------------------------------------------------------------ rendering
  function renderPosition (v) {
    const shown = v ?? previewing ?? latest
    const live = v === undefined ? previewing === null : v >= latest
    if (!latest) {
      posTitle.textContent = 'No versions yet'
      posSub.textContent = ''
      return
    }
    posTitle.textContent = live ? `Live · version ${latest}` : `Version ${shown} of ${latest}`
    const info = infoFor(shown)
    posSub.textContent = info ? `${info.user} · ${clockTime(Date.parse(info.time))}, ${relativeTime(info.time)} · ${describeSummary(info.summary)}` : ''
  }
  function render () {
    renderPosition()
    const live = previewing === null
    restoreBtn.disabled = live || busy || !latest
    forkBtn.disabled = busy || !latest
    restoreBtn.title = live ? 'Pick an earlier version first' : `Make the board look like version ${previewing} again (for everyone)`
    forkBtn.title = `Start a new board from version ${previewing ?? latest}`
    hint.textContent = failed || (!latest
      ? 'Nothing saved yet. Every change that reaches the server becomes a version you can go back to.'
      : live
        ? 'Drag the slider or pick a change below to preview an earlier version. Others keep editing live meanwhile.'
        : 'Previewing: the board below is read-only. Restore it for everyone, fork it into a new board, or go back to live.')
    hint.classList.toggle('error', !!failed)
    const shown = previewing ?? latest
    const els = []
    let lastDay = ''
    for (const g of groupVersions(versions)) {
      const day = dayLabel(g.newestT)
      if (day !== lastDay) { els.push(h('div', { class: 'hp-day', role: 'presentation' }, day)); lastDay = day }
      const active = shown >= g.first && shown <= g.last
      const isNow = g.last === latest
      const sum = describeSummary(g.pending && !g.added && !g.changed && !g.removed && !g.meta ? null : g)
      const range = g.first === g.last ? `v${g.last}` : `v${g.first}–${g.last}`
      const when = g.newestT - g.oldestT > 60000 ? `${clockTime(g.oldestT)}–${clockTime(g.newestT)}` : clockTime(g.newestT)
      const open = g.count > 1 && expanded.has(g.first)
      const row = h('button', {
        class: 'hp-group' + (active ? ' active' : ''),
        'aria-current': active ? 'true' : null,
        'data-testid': 'history-group',
        'data-user': g.user,
        'data-first': String(g.first),
        'data-last': String(g.last),
        'data-count': String(g.count),
        title: isNow ? 'The current version — click to go back to live editing' : `Preview the board after ${range}`,
        onclick: () => (isNow ? goLive() : preview(g.last))
      },
      h('span', { class: 'avatar sm', style: { background: (hooks.colorFor && hooks.colorFor(g.user)) || nameColor(g.user) } }, initials(g.user)),
      h('span', { class: 'hp-g-body' },
        h('span', { class: 'hp-g-top' }, h('span', { class: 'hp-g-user' }, g.user), isNow ? h('span', { class: 'hp-badge' }, 'Current') : null, h('time', { datetime: new Date(g.newestT).toISOString(), title: new Date(g.newestT).toLocaleString() }, when)),
        h('span', { class: 'hp-g-sum', 'data-testid': 'history-group-summary' }, sum),
        h('span', { class: 'hp-g-ver' }, range)))
      const entry = h('div', { class: 'hp-entry' + (open ? ' open' : ''), role: 'listitem' }, row)
      if (g.count > 1) {
        const versionsId = `hp-versions-${g.first}`
        entry.append(h('button', {
          class: 'hp-expand',
          'aria-expanded': String(open),
          'aria-controls': open ? versionsId : null,
          'aria-label': `${open ? 'Hide' : 'Show'} the ${g.count} versions of ${range}`,
          'data-testid': 'history-expand',
          onclick: () => { if (open) expanded.delete(g.first); else expanded.add(g.first); render() }
        }, plural(g.count, 'version'), h('span', { class: 'hp-chevron', html: icon(open ? 'forward' : 'backward', 14) })))
        if (open) {
          entry.append(h('div', { class: 'hp-versions', id: versionsId, role: 'list', 'aria-label': `Versions ${range}` },
            g.versions.slice(0, VERSIONS_LISTED).map((v) => {
              const on = shown === v.version
              const vNow = v.version === latest
              return h('button', {
                class: 'hp-version' + (on ? ' active' : ''),
                role: 'listitem',
                'aria-current': on ? 'true' : null,
                'data-testid': 'history-version',
                'data-version': String(v.version),
                title: vNow ? 'The current version — click to go back to live editing' : `Preview the board after version ${v.version}`,
                onclick: () => (vNow ? goLive() : preview(v.version))
              },
              h('span', { class: 'hp-v-num' }, `v${v.version}`),
              h('span', { class: 'hp-v-sum' }, describeSummary(v.summary)),
              h('time', { datetime: v.time }, secondsTime(Date.parse(v.time))))
            }),
            g.count > VERSIONS_LISTED ? h('div', { class: 'hp-more-versions' }, `…and ${g.count - VERSIONS_LISTED} older — the slider reaches every one`) : null))
        }
      }
      els.push(entry)
    }
    list.replaceChildren(...els)
    moreBtn.hidden = !older
  }

  // ------------------------------------------------------------ open / close
  function open () {
    if (isOpen) return
    isOpen = true
    panel.hidden = false
    render()
    loadNewest()
    hooks.onToggle && hooks.onToggle(true)
    setTimeout(() => slider.focus({ preventScroll: true }), 0)
  }
  function close () {
    if (!isOpen) return
    isOpen = false
    panel.hidden = true
    clearTimeout(refreshTimer); refreshTimer = 0
    goLive()
    hooks.onToggle && hooks.onToggle(false)
  }

  return {
    panel,
    open,
    close,
    toggle: () => (isOpen ? close() : open()),
    get isOpen () { return isOpen },
    get previewing () { return previewing },
    get latest () { return latest },
    preview,
    goLive,
    /** The live document changed: new versions are on their way. */
    changed: () => refreshSoon()
  }
}
