// The boards list page ("/").
import { randomId, finishShape, fontSize, BOARD_ID_RE } from './model.js'
import { renderToCanvas, unionBounds } from './render.js'
import { icon, LOGO } from './icons.js'
import { h, relativeTime, toast } from './ui.js'
import { storedName } from './user.js'

const RECENT_KEY = 'inkstream:recent'

export function rememberBoard (id) {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT_KEY) || '[]').filter((b) => b.id !== id)
    list.unshift({ id, at: Date.now() })
    localStorage.setItem(RECENT_KEY, JSON.stringify(list.slice(0, 50)))
  } catch {}
}
function recentBoards () {
  try { return JSON.parse(localStorage.getItem(RECENT_KEY) || '[]') } catch { return [] }
}

export function newBoard () {
  const id = randomId(10)
  sessionStorage.setItem('inkstream:new:' + id, '1')
  location.href = `/b/${id}`
}

export async function mountBoards (root) {
  document.title = 'Boards · Inkstream'
  const grid = h('div', { class: 'board-grid', 'data-testid': 'board-list', 'aria-live': 'polite' })
  const joinInput = h('input', { class: 'input', placeholder: 'Paste a board link or id', 'aria-label': 'Board link or id', 'data-testid': 'join-input' })
  const join = (e) => {
    e.preventDefault()
    const v = joinInput.value.trim()
    const m = /\/b\/([^/?#]+)/.exec(v)
    const id = m ? decodeURIComponent(m[1]) : v
    if (!BOARD_ID_RE.test(id)) { toast('That does not look like a board link or id', { kind: 'warn' }); return }
    location.href = `/b/${encodeURIComponent(id)}`
  }
  const name = storedName()
  root.replaceChildren(h('div', { class: 'home' },
    h('header', { class: 'home-header' },
      h('a', { class: 'brand', href: '/', html: LOGO + '<span>Inkstream</span>' }),
      h('div', { class: 'home-header-right' }, name ? h('span', { class: 'hello' }, `Hi, ${name}`) : null)),
    h('main', { class: 'home-main' },
      h('section', { class: 'home-hero' },
        h('div', {},
          h('h1', {}, 'Boards'),
          h('p', { class: 'sub' }, 'Sketch, diagram and plan together in real time. Everything syncs live and keeps working offline.')),
        h('div', { class: 'hero-actions' },
          h('form', { class: 'join', onsubmit: join }, joinInput, h('button', { class: 'btn', type: 'submit' }, 'Open')),
          h('button', { class: 'btn btn-primary btn-lg', 'data-testid': 'new-board', onclick: newBoard, html: icon('plus', 18) + '<span>New board</span>' }))),
      grid)))

  grid.replaceChildren(...Array.from({ length: 4 }, () => h('div', { class: 'board-card skeleton' })))
  let boards = []
  let failed = false
  try {
    const r = await fetch('/api/boards', { headers: { accept: 'application/json' } })
    if (!r.ok) throw new Error(r.statusText)
    boards = await r.json()
    if (!Array.isArray(boards)) boards = boards.boards || []
  } catch (e) {
    failed = true
  }
  const known = new Set(boards.map((b) => b.id))
  const recent = recentBoards().filter((b) => !known.has(b.id))
  boards.sort((a, b) => String(b.updated || '').localeCompare(String(a.updated || '')))
  const all = [...boards, ...recent.map((b) => ({ id: b.id, title: '', updated: new Date(b.at).toISOString(), local: true }))]
  if (!all.length) {
    grid.replaceChildren(h('div', { class: 'empty-state' },
      h('div', { class: 'empty-art', html: icon('sticky', 40) }),
      h('h2', {}, failed ? 'Cannot reach the server' : 'No boards yet'),
      h('p', {}, failed ? 'You can still open a new board: it works offline and syncs later.' : 'Create your first board and share the link with your team.'),
      h('button', { class: 'btn btn-primary', onclick: newBoard }, 'New board')))
    return
  }
  grid.replaceChildren(...all.map((b, i) => card(b, i < 24)))
}

function card (b, withThumb) {
  const thumb = h('canvas', { class: 'thumb', width: '560', height: '320', 'aria-hidden': 'true' })
  const title = typeof b.title === 'string' ? b.title.trim() : ''
  const metaBits = []
  if (typeof b.shapes === 'number') metaBits.push(`${b.shapes} shape${b.shapes === 1 ? '' : 's'}`)
  if (b.updated) metaBits.push(`Edited ${relativeTime(b.updated)}`)
  if (b.local) metaBits.push('not synced yet')
  // Untitled boards (most boards made through the API) are told apart by their id.
  const titleEl = title
    ? h('div', { class: 'card-title', 'data-testid': 'board-card-title' }, title)
    : h('div', { class: 'card-title untitled', 'data-testid': 'board-card-title' },
      h('span', { class: 'card-untitled' }, 'Untitled'), h('span', { class: 'card-sep', 'aria-hidden': 'true' }, ' · '), h('span', { class: 'card-id' }, b.id))
  const el = h('a', {
    class: 'board-card',
    href: `/b/${encodeURIComponent(b.id)}`,
    title: title ? `${title} — ${b.id}` : b.id,
    'aria-label': `${title || 'Untitled board ' + b.id}${metaBits.length ? ', ' + metaBits.join(', ') : ''}`,
    'data-testid': 'board-card',
    'data-board-id': b.id
  },
  h('div', { class: 'thumb-wrap' }, thumb, b.shapes === 0 ? h('span', { class: 'thumb-empty' }, 'Empty board') : null),
  h('div', { class: 'card-body' },
    titleEl,
    h('div', { class: 'card-meta' }, metaBits.join(' · '))))
  if (withThumb && !b.local && b.shapes !== 0) drawThumb(b.id, thumb)
  return el
}

async function drawThumb (id, canvas) {
  try {
    // The projector's stored preview: never loads the board into the gateway (may lag the live board).
    const r = await fetch(`/api/boards/${encodeURIComponent(id)}/thumbnail`)
    if (!r.ok) return
    const data = await r.json()
    const list = (data.shapes || []).slice(0, 3000).map((s) => finishShape({
      ...s,
      w: Math.abs(Number(s.w) || 0),
      h: Math.abs(Number(s.h) || 0),
      x: Number(s.x) || 0,
      y: Number(s.y) || 0,
      stroke: s.stroke || '#1e1e2e',
      fill: s.fill || 'transparent',
      width: Number(s.width) || 2,
      opacity: s.opacity ?? 1,
      font: fontSize(s.font),
      rotation: Number(s.rotation) || 0
    }))
    const b = unionBounds(list)
    if (!b) return
    const pad = 24
    const scale = Math.min(2, (canvas.width - pad * 2) / Math.max(b.w, 1), (canvas.height - pad * 2) / Math.max(b.h, 1))
    const bounds = { x: b.x + b.w / 2 - canvas.width / 2 / scale, y: b.y + b.h / 2 - canvas.height / 2 / scale, w: canvas.width / scale, h: canvas.height / scale }
    renderToCanvas(canvas, list, bounds, scale, '#ffffff')
  } catch {}
}
