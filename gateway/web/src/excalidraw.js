// Excalidraw scene import/export (.excalidraw JSON, "type": "excalidraw", version 2).
//
// The import follows the same rules as the server's, projections/excalidraw.py (`from_scene`,
// behind POST /api/boards/{id}/import and `inkstream import`): every element is imported
// faithfully, counted as deleted, or counted in `skipped` -- unsupported types under their name,
// malformed elements under "invalid", with the first few reasons in the server's words (values
// quoted as Python's repr, see pyjson.js). The two cannot share code: change them together, check
// by check and in the same order (the first failing check is the reason given). The one deliberate
// difference: a text's box is its measured size here, where the server estimates 0.6 em a
// character (the accept/reject decision uses the server's estimate).
import { randomId } from './model.js'
import { measureText } from './render.js'
import { parseJson, pyShow, pyFloat } from './pyjson.js'

const SUPPORTED = new Set(['rectangle', 'ellipse', 'diamond', 'line', 'arrow', 'freedraw', 'text'])
const LINE_HEIGHT = 1.25
/** As the server: how many reasons an import keeps, how many skipped type names it lists (the rest are "other"), how much of a name it quotes. */
const MAX_REASONS = 20
const MAX_SKIPPED_KINDS = 20
const MAX_KIND = 40
/** What Python's str.isspace() calls white space (str.strip() removes these; String.trim() differs). */
const BLANK = /^[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/

/** One element that cannot be imported faithfully; the message says why. */
class Invalid extends Error {}

const own = (o, k) => (Object.hasOwn(o, k) ? o[k] : undefined)
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
const finite = (v) => typeof v === 'number' && Number.isFinite(v)
const chars = (s) => Array.from(s) // Python counts and slices strings by code point

/** Field `name` as a finite number; `dflt` when absent or null (required when undefined). */
function number (el, name, dflt) {
  const v = own(el, name)
  if (v === undefined || v === null) {
    if (dflt === undefined) throw new Invalid(`${name} is missing`)
    return dflt
  }
  if (!finite(v)) throw new Invalid(`${name} must be a finite number, not ${pyShow(el, name)}`)
  return v
}

function color (el, name, fallback) {
  const v = own(el, name)
  if (v === undefined || v === null) return fallback
  if (typeof v !== 'string') throw new Invalid(`${name} must be a string, not ${pyShow(el, name)}`)
  return v || fallback
}

/** Python's round(): to the nearest integer, halves to even (Math.round sends halves up). */
function roundHalfEven (v) {
  const f = Math.floor(v)
  const d = v - f
  return (d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f) + 0 // + 0: never -0
}

/** A coordinate to 1/100, as the server's `_r` (left alone from 1e15 up: v * 100 could overflow). */
export function roundCoord (v) {
  if (Math.abs(v) >= 1e15) return v
  return roundHalfEven(v * 100) / 100
}
const r = roundCoord

function flatPoints (el) {
  const pts = own(el, 'points')
  if (!Array.isArray(pts) || !pts.length) {
    throw new Invalid(`points must be a non-empty list of [x, y] pairs, not ${pyShow(el, 'points')}`)
  }
  const out = []
  for (let i = 0; i < pts.length; i++) {
    const p = pts[i]
    if (!Array.isArray(p) || p.length < 2 || !finite(p[0]) || !finite(p[1])) {
      throw new Invalid(`point ${i} must be [x, y] with finite numbers, not ${pyShow(pts, i)}`)
    }
    out.push(r(p[0]), r(p[1]))
  }
  return out
}

function extents (p) {
  let minX = Infinity; let minY = Infinity; let maxX = -Infinity; let maxY = -Infinity
  for (let i = 0; i + 1 < p.length; i += 2) {
    minX = Math.min(minX, p[i]); maxX = Math.max(maxX, p[i])
    minY = Math.min(minY, p[i + 1]); maxY = Math.max(maxY, p[i + 1])
  }
  return { w: maxX - minX, h: maxY - minY }
}

function arrowhead (el, name, dflt) {
  if (!Object.hasOwn(el, name)) return dflt
  const v = el[name]
  if (v !== null && v !== undefined && typeof v !== 'string') {
    throw new Invalid(`${name} must be a string or null, not ${pyShow(el, name)}`)
  }
  return v ?? null
}

/** The board shape of one supported, not deleted element (the server's `_shape`); throws Invalid. */
function shapeOf (el, kind) {
  const x = number(el, 'x'); const y = number(el, 'y')
  const sized = kind === 'rectangle' || kind === 'ellipse' || kind === 'diamond'
  const w = Math.abs(number(el, 'width', sized ? undefined : 0))
  const h = Math.abs(number(el, 'height', sized ? undefined : 0))
  const strokeWidth = number(el, 'strokeWidth', 2)
  if (strokeWidth < 0) throw new Invalid(`strokeWidth must be >= 0, not ${pyFloat(strokeWidth)}`)
  const base = {
    x: r(x),
    y: r(y),
    w: r(w),
    h: r(h),
    rotation: number(el, 'angle', 0),
    stroke: color(el, 'strokeColor', '#1e1e1e'),
    fill: color(el, 'backgroundColor', 'transparent'),
    width: strokeWidth || 2,
    opacity: Math.max(0, Math.min(1, number(el, 'opacity', 100) / 100))
  }
  if (kind === 'rectangle') return { ...base, type: 'rect' }
  if (kind === 'ellipse') return { ...base, type: 'ellipse' }
  if (kind === 'diamond') {
    const points = [r(w / 2), 0, r(w), r(h / 2), r(w / 2), r(h), 0, r(h / 2), r(w / 2), 0]
    return { ...base, type: 'line', points }
  }
  if (kind === 'line' || kind === 'arrow' || kind === 'freedraw') {
    let points = flatPoints(el)
    let type = kind === 'freedraw' ? 'stroke' : kind
    if (kind === 'arrow') {
      const end = arrowhead(el, 'endArrowhead', 'arrow')
      const start = arrowhead(el, 'startArrowhead', null)
      if (!end && start) {
        // only a start head: reverse so the head is at our end
        const rev = []
        for (let i = points.length - 2; i >= 0; i -= 2) rev.push(points[i], points[i + 1])
        points = rev
      } else if (!end && !start) type = 'line'
    }
    const e = extents(points)
    return { ...base, type, points, w: r(e.w), h: r(e.h), fill: kind === 'line' ? base.fill : 'transparent' }
  }
  // text
  const key = typeof own(el, 'originalText') === 'string' ? 'originalText' : 'text'
  const text = own(el, key)
  if (typeof text !== 'string') throw new Invalid(`text must be a string, not ${pyShow(el, key)}`)
  if (BLANK.test(text)) throw new Invalid('text element without text')
  let font = number(el, 'fontSize', 20)
  if (font < 0) throw new Invalid(`fontSize must be > 0, not ${pyFloat(font)}`)
  font = font || 20
  const lines = text.split('\n')
  let longest = 0
  for (const line of lines) longest = Math.max(longest, chars(line).length)
  // the server's box (for the verdict), then the measured one (for the board)
  const tw = Math.max(r(w), r(longest * font * 0.6))
  const th = Math.max(r(h), r(lines.length * font * LINE_HEIGHT))
  return { ...base, type: 'text', text, font, fill: 'transparent', w: tw, h: th }
}

/**
 * Convert an Excalidraw scene (JSON text, or the parsed object) into shape field objects (without
 * z/createdBy/createdAt). Returns {shapes, skipped: {name: count}, deleted, invalid: [reason]}:
 * every element is in exactly one of them (`skipped.invalid` counts the malformed ones, `invalid`
 * says why for the first few). Throws if the text is not JSON or not a scene.
 */
export function importExcalidraw (json) {
  const scene = typeof json === 'string' ? parseJson(json) : json
  if (!isObject(scene) || !Array.isArray(own(scene, 'elements'))) {
    throw new Error('not an Excalidraw scene: expected a JSON object with an "elements" array')
  }
  const elements = scene.elements
  const shapes = []
  const skipped = new Map()
  const invalid = []
  let deleted = 0
  const count = (name) => skipped.set(name, (skipped.get(name) || 0) + 1)
  const skip = (kind) => {
    const c = chars(kind)
    let name = c.length <= MAX_KIND ? kind : c.slice(0, MAX_KIND - 1).join('') + '…'
    const kinds = [...skipped.keys()].filter((k) => k !== 'invalid' && k !== 'other').length
    if (!skipped.has(name) && kinds >= MAX_SKIPPED_KINDS) name = 'other'
    count(name)
  }
  const reject = (index, kind, reason) => {
    count('invalid')
    if (invalid.length < MAX_REASONS) invalid.push(`element ${index}${kind ? ` (${chars(kind).slice(0, MAX_KIND).join('')})` : ''}: ${reason}`)
  }
  for (let index = 0; index < elements.length; index++) {
    const el = elements[index]
    if (!isObject(el)) { reject(index, '', `not a JSON object: ${pyShow(elements, index)}`); continue }
    const kind = own(el, 'type')
    const label = typeof kind === 'string' ? kind : ''
    const del = own(el, 'isDeleted')
    if (del !== undefined && del !== null && typeof del !== 'boolean') {
      reject(index, label, `isDeleted must be true or false, not ${pyShow(el, 'isDeleted')}`)
      continue
    }
    if (del) { deleted++; continue }
    if (typeof kind !== 'string' || !kind) { reject(index, '', `type must be a non-empty string, not ${pyShow(el, 'type')}`); continue }
    if (!SUPPORTED.has(kind)) { skip(kind); continue }
    let shape
    try {
      shape = shapeOf(el, kind)
      let bad = Object.keys(shape).find((k) => typeof shape[k] === 'number' && !Number.isFinite(shape[k]))
      if (bad === undefined && shape.points && !shape.points.every(Number.isFinite)) bad = 'points'
      if (bad !== undefined) throw new Invalid(`geometry out of range (${bad} is not finite)`)
    } catch (err) {
      if (!(err instanceof Invalid)) throw err
      reject(index, kind, err.message)
      continue
    }
    if (shape.type === 'text') {
      // the box as measured in the app's font (at least the element's own box), not estimated
      const m = measureText(shape.text, shape.font)
      const w = r(Math.abs(own(el, 'width') ?? 0)); const h = r(Math.abs(own(el, 'height') ?? 0))
      if (Number.isFinite(m.w) && Number.isFinite(m.h)) { shape.w = Math.max(w, m.w); shape.h = Math.max(h, m.h) }
    }
    shapes.push(shape)
  }
  return { shapes, skipped: Object.fromEntries(skipped), deleted, invalid }
}

const plural = (n, one, many = one + 's') => `${n} ${n === 1 ? one : many}`

/** "frame, image ×2": the unsupported types an import skipped (not the invalid elements). */
export function describeSkipped (skipped) {
  return Object.entries(skipped).filter(([t]) => t !== 'invalid').map(([t, n]) => (n > 1 ? `${t} ×${n}` : t)).join(', ')
}

/**
 * What to tell the user after an import: {kind, title, notes: [line], reasons: [line], more}
 * -- a title ("Imported 5 shapes from x.excalidraw"), a line for the unsupported types skipped,
 * one for the invalid elements, then the first `shown` reasons and how many more there were.
 */
export function importSummary ({ shapes, skipped, invalid }, fileName, shown = 3) {
  const unsupported = Object.entries(skipped).reduce((n, [t, c]) => (t === 'invalid' ? n : n + c), 0)
  const bad = skipped.invalid || 0
  const notes = []
  if (unsupported) notes.push(`Skipped ${plural(unsupported, 'unsupported element')}: ${describeSkipped(skipped)}`)
  if (bad) notes.push(`Skipped ${plural(bad, 'invalid element')}${invalid.length ? ':' : ''}`)
  const reasons = invalid.slice(0, shown).map((s) => s[0].toUpperCase() + s.slice(1))
  return {
    kind: !shapes.length ? 'warn' : unsupported || bad ? 'warn' : 'success',
    title: shapes.length ? `Imported ${plural(shapes.length, 'shape')} from ${fileName}` : `Nothing to import from ${fileName}`,
    notes,
    reasons,
    more: bad - reasons.length
  }
}

function seed () {
  return Math.floor(Math.random() * 2 ** 31)
}

function baseElement (s, type) {
  return {
    id: s.id || randomId(),
    type,
    x: s.x,
    y: s.y,
    width: s.w,
    height: s.h,
    angle: s.rotation || 0,
    strokeColor: s.stroke,
    backgroundColor: s.fill || 'transparent',
    fillStyle: 'solid',
    strokeWidth: s.width,
    strokeStyle: 'solid',
    roughness: 0,
    opacity: Math.round((s.opacity ?? 1) * 100),
    groupIds: [],
    frameId: null,
    roundness: type === 'rectangle' ? { type: 3 } : null,
    seed: seed(),
    version: 1,
    versionNonce: seed(),
    isDeleted: false,
    boundElements: null,
    updated: Date.now(),
    link: null,
    locked: false
  }
}

function pairs (p) {
  const out = []
  for (let i = 0; i + 1 < (p || []).length; i += 2) out.push([p[i], p[i + 1]])
  return out
}

function textElement (s, text, x, y, w, h, containerId = null) {
  return {
    ...baseElement({ ...s, x, y, w, h, fill: 'transparent' }, 'text'),
    text,
    originalText: text,
    fontSize: s.font,
    fontFamily: 2,
    textAlign: 'left',
    verticalAlign: 'top',
    containerId,
    lineHeight: 1.25,
    autoResize: true
  }
}

/** Board shapes (plain, sorted by z) → Excalidraw scene object. */
export function exportExcalidraw (shapes) {
  const elements = []
  for (const s of shapes) {
    switch (s.type) {
      case 'rect': elements.push(baseElement(s, 'rectangle')); break
      case 'ellipse': elements.push(baseElement(s, 'ellipse')); break
      case 'image': elements.push(baseElement({ ...s, fill: '#e9ecef' }, 'rectangle')); break
      case 'line':
      case 'arrow':
      case 'stroke': {
        const p = s.points || [0, 0]
        const type = s.type === 'stroke' ? 'freedraw' : s.type
        const el = { ...baseElement({ ...s, w: s.lw, h: s.lh }, type), points: pairs(p), lastCommittedPoint: null }
        if (type === 'freedraw') {
          el.pressures = []
          el.simulatePressure = true
          el.backgroundColor = 'transparent'
        } else {
          el.startBinding = null
          el.endBinding = null
          el.startArrowhead = null
          el.endArrowhead = type === 'arrow' ? 'arrow' : null
        }
        elements.push(el)
        break
      }
      case 'text':
        elements.push(textElement(s, s.text || '', s.x, s.y, s.w, s.h))
        break
      case 'sticky': {
        const rect = baseElement({ ...s, fill: s.fill === 'transparent' ? '#fff3bf' : s.fill, width: 1, stroke: 'transparent' }, 'rectangle')
        if (s.text) {
          const t = textElement(s, s.text, s.x + 14, s.y + 14, Math.max(1, s.w - 28), Math.max(1, s.h - 28), rect.id)
          rect.boundElements = [{ type: 'text', id: t.id }]
          elements.push(rect, t)
        } else elements.push(rect)
        break
      }
    }
  }
  return {
    type: 'excalidraw',
    version: 2,
    source: 'inkstream',
    elements,
    appState: { viewBackgroundColor: '#ffffff', gridSize: null },
    files: {}
  }
}
