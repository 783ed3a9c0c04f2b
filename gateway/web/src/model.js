// The Inkstream board model — the one schema shared by the web app, the HTTP
// API and the exports (see ARCHITECTURE.md "Board model" and ../README.md).
//
// Y.Doc roots:
//   shapes: Y.Map<shapeId, Y.Map>   one Y.Map of plain-value fields per shape
//   meta:   Y.Map                   { title }
// Shape fields (only these names):
//   type      stroke | rect | ellipse | line | arrow | text | sticky | image
//   x, y      world coordinates of the shape origin (top-left of the box)
//   w, h      size (>= 0). For stroke/line/arrow: extent of `points`.
//   points    flat [x0,y0,x1,y1,...] relative to (x, y) (stroke/line/arrow)
//   rotation  radians, around the box centre (default 0)
//   stroke    CSS colour; fill: CSS colour or "transparent"
//   width     stroke width (world units); opacity 0..1
//   font      font size in world units (a number); the family is the app's
//   text      plain string (text/sticky)
//   z         fractional index string; order ascending, ties by id
//   createdBy display name; createdAt ms epoch
import * as Y from 'yjs'
import { keyBetween, keysBetween } from './zindex.js'

export const SHAPE_TYPES = ['stroke', 'rect', 'ellipse', 'line', 'arrow', 'text', 'sticky', 'image']
export const FIELDS = ['type', 'x', 'y', 'w', 'h', 'points', 'rotation', 'stroke', 'fill', 'width',
  'opacity', 'font', 'text', 'src', 'z', 'createdBy', 'createdAt']
export const POINT_TYPES = new Set(['stroke', 'line', 'arrow'])
export const TEXT_TYPES = new Set(['text', 'sticky'])

/** Transaction origin of this browser's own edits: the UndoManager tracks only it. */
export const LOCAL = { name: 'inkstream-local' }

export const FONT_FAMILY = '"Inter", "Segoe UI", system-ui, -apple-system, "Helvetica Neue", Arial, sans-serif'
export const LINE_HEIGHT = 1.25
export const STICKY_PAD = 14

export function getRoots (doc) {
  return { shapes: doc.getMap('shapes'), meta: doc.getMap('meta') }
}

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
export function randomId (n = 12) {
  const bytes = crypto.getRandomValues(new Uint8Array(n))
  let s = ''
  for (const b of bytes) s += ID_ALPHABET[b & 63]
  return s
}

export const BOARD_ID_RE = /^[A-Za-z0-9\-_.~]{1,128}$/

function num (v, d = 0) {
  return typeof v === 'number' && Number.isFinite(v) ? v : d
}

/** Plain snapshot of a shape Y.Map, with defaults and a derived bounding box. */
export function readShape (id, ymap) {
  return shapeFrom(id, (k) => ymap.get(k))
}

/** The same from a shape in the HTTP API's JSON form (`{id, type, x, ...}`), e.g. a past version. */
export function plainShape (o) {
  return shapeFrom(String(o.id), (k) => o[k])
}

function shapeFrom (id, get) {
  const s = {
    id,
    type: get('type'),
    x: num(get('x')),
    y: num(get('y')),
    w: Math.abs(num(get('w'))),
    h: Math.abs(num(get('h'))),
    points: get('points'),
    rotation: num(get('rotation')),
    stroke: get('stroke') || '#1e1e2e',
    fill: get('fill') || 'transparent',
    width: num(get('width'), 2),
    opacity: num(get('opacity'), 1),
    font: fontSize(get('font')),
    text: get('text'),
    z: String(get('z') ?? ''),
    createdBy: get('createdBy'),
    createdAt: get('createdAt')
  }
  return finishShape(s)
}

/** Accepts a number or a CSS-ish "20px sans-serif" string (written by other tools). */
export function fontSize (f) {
  if (typeof f === 'number' && f > 0) return f
  if (typeof f === 'string') {
    const m = /(\d+(?:\.\d+)?)px/.exec(f) || /^(\d+(?:\.\d+)?)$/.exec(f.trim())
    if (m) return parseFloat(m[1])
  }
  return 24
}

/** Normalise a plain shape object in place and compute its bbox (world, rotation-aware). */
export function finishShape (s) {
  if (!Array.isArray(s.points)) s.points = null
  if (typeof s.text !== 'string') s.text = ''
  if (POINT_TYPES.has(s.type) && s.points && s.points.length >= 2) {
    let minX = Infinity; let minY = Infinity; let maxX = -Infinity; let maxY = -Infinity
    const p = s.points
    for (let i = 0; i + 1 < p.length; i += 2) {
      const px = p[i]; const py = p[i + 1]
      if (px < minX) minX = px
      if (px > maxX) maxX = px
      if (py < minY) minY = py
      if (py > maxY) maxY = py
    }
    s.lx = minX; s.ly = minY; s.lw = maxX - minX; s.lh = maxY - minY
  } else {
    s.lx = 0; s.ly = 0; s.lw = s.w; s.lh = s.h
  }
  // Unrotated local box in world coordinates
  const bx = s.x + s.lx; const by = s.y + s.ly
  const pad = (s.width || 0) / 2 + (s.type === 'arrow' ? 10 + (s.width || 0) * 2 : 0)
  if (s.rotation) {
    const cx = bx + s.lw / 2; const cy = by + s.lh / 2
    const c = Math.abs(Math.cos(s.rotation)); const si = Math.abs(Math.sin(s.rotation))
    const hw = (s.lw * c + s.lh * si) / 2; const hh = (s.lw * si + s.lh * c) / 2
    s.bbox = { x: cx - hw - pad, y: cy - hh - pad, w: 2 * hw + 2 * pad, h: 2 * hh + 2 * pad }
  } else {
    s.bbox = { x: bx - pad, y: by - pad, w: s.lw + 2 * pad, h: s.lh + 2 * pad }
  }
  s.path = null // Path2D cache (renderer)
  return s
}

/** Box of the shape ignoring stroke width, in world coords (used for selection UI). */
export function shapeBox (s) {
  return { x: s.x + s.lx, y: s.y + s.ly, w: s.lw, h: s.lh }
}

export function compareZ (a, b) {
  if (a.z < b.z) return -1
  if (a.z > b.z) return 1
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/** Highest z among the given plain shapes (or null). */
export function maxZ (shapes) {
  let m = null
  for (const s of shapes) if (m === null || s.z > m) m = s.z
  return m
}

export function round (v, p = 100) {
  return Math.round(v * p) / p
}

/** Create a shape Y.Map with every field set. Caller wraps in doc.transact(..., LOCAL). */
export function insertShape (shapesMap, fields) {
  const id = fields.id || randomId()
  const m = new Y.Map()
  for (const k of FIELDS) {
    if (fields[k] !== undefined && fields[k] !== null) m.set(k, fields[k])
  }
  shapesMap.set(id, m)
  return id
}

/** Complete the field set for a new shape of `type` (defaults per schema). */
export function newShapeFields (type, base, style, user) {
  const f = {
    type,
    x: 0,
    y: 0,
    w: 0,
    h: 0,
    rotation: 0,
    stroke: style.stroke,
    fill: style.fill,
    width: style.width,
    opacity: style.opacity ?? 1,
    font: style.font,
    text: '',
    createdBy: user,
    createdAt: Date.now(),
    ...base
  }
  if (POINT_TYPES.has(type)) {
    if (!f.points) f.points = [0, 0]
    if (type !== 'stroke' && f.fill === undefined) f.fill = 'transparent'
  } else {
    delete f.points
  }
  if (!TEXT_TYPES.has(type)) delete f.text
  if (type === 'stroke' || type === 'line' || type === 'arrow') f.fill = f.fill || 'transparent'
  return f
}

export { keyBetween, keysBetween }

/** Plain JSON of every shape, sorted by (z, id) — same rendering as the HTTP API. */
export function snapshotShapes (doc) {
  const { shapes } = getRoots(doc)
  const out = []
  shapes.forEach((m, id) => {
    if (!(m instanceof Y.Map)) return
    const o = { id }
    for (const k of FIELDS) if (m.has(k)) o[k] = m.get(k)
    out.push(o)
  })
  out.sort((a, b) => (a.z < b.z ? -1 : a.z > b.z ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  return out
}
