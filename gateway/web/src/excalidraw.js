// Excalidraw scene import/export (.excalidraw JSON, "type": "excalidraw", version 2).
import { randomId, round } from './model.js'
import { measureText } from './render.js'

const SUPPORTED = new Set(['rectangle', 'ellipse', 'diamond', 'line', 'arrow', 'freedraw', 'text'])

function color (c, fallback) {
  return typeof c === 'string' && c ? c : fallback
}

function flatPoints (pts) {
  const out = []
  if (!Array.isArray(pts)) return [0, 0]
  for (const p of pts) {
    if (Array.isArray(p) && p.length >= 2 && Number.isFinite(p[0]) && Number.isFinite(p[1])) {
      out.push(round(p[0]), round(p[1]))
    }
  }
  return out.length ? out : [0, 0]
}

function extents (p) {
  let minX = Infinity; let minY = Infinity; let maxX = -Infinity; let maxY = -Infinity
  for (let i = 0; i + 1 < p.length; i += 2) {
    minX = Math.min(minX, p[i]); maxX = Math.max(maxX, p[i])
    minY = Math.min(minY, p[i + 1]); maxY = Math.max(maxY, p[i + 1])
  }
  return { w: maxX - minX, h: maxY - minY }
}

/**
 * Convert an Excalidraw scene into shape field objects (without z/createdBy/createdAt).
 * Returns { shapes, skipped: {type: count}, deleted }.
 */
export function importExcalidraw (json) {
  const scene = typeof json === 'string' ? JSON.parse(json) : json
  if (!scene || typeof scene !== 'object' || !Array.isArray(scene.elements)) {
    throw new Error('Not an Excalidraw file (no "elements" array)')
  }
  const shapes = []
  const skipped = {}
  let deleted = 0
  for (const el of scene.elements) {
    if (!el || typeof el !== 'object') continue
    if (el.isDeleted) { deleted++; continue }
    const t = el.type
    if (!SUPPORTED.has(t)) {
      skipped[t || 'unknown'] = (skipped[t || 'unknown'] || 0) + 1
      continue
    }
    const x = Number(el.x) || 0; const y = Number(el.y) || 0
    let w = Math.abs(Number(el.width) || 0); let h = Math.abs(Number(el.height) || 0)
    const base = {
      x: round(x),
      y: round(y),
      w: round(w),
      h: round(h),
      rotation: Number(el.angle) || 0,
      stroke: color(el.strokeColor, '#1e1e1e'),
      fill: color(el.backgroundColor, 'transparent'),
      width: Number(el.strokeWidth) || 2,
      opacity: Math.max(0, Math.min(1, (el.opacity ?? 100) / 100))
    }
    if (t === 'rectangle') shapes.push({ ...base, type: 'rect' })
    else if (t === 'ellipse') shapes.push({ ...base, type: 'ellipse' })
    else if (t === 'diamond') {
      shapes.push({
        ...base,
        type: 'line',
        points: [round(w / 2), 0, round(w), round(h / 2), round(w / 2), round(h), 0, round(h / 2), round(w / 2), 0]
      })
    } else if (t === 'line' || t === 'arrow' || t === 'freedraw') {
      let points = flatPoints(el.points)
      let type = t === 'freedraw' ? 'stroke' : t
      if (t === 'arrow') {
        const end = el.endArrowhead !== undefined ? el.endArrowhead : 'arrow'
        const start = el.startArrowhead
        if (!end && start) {
          // only a start head: reverse so the head is at our end
          const r = []
          for (let i = points.length - 2; i >= 0; i -= 2) r.push(points[i], points[i + 1])
          points = r
        } else if (!end && !start) type = 'line'
      }
      const e = extents(points)
      w = e.w; h = e.h
      shapes.push({ ...base, type, points, w: round(w), h: round(h), fill: t === 'line' ? base.fill : 'transparent' })
    } else if (t === 'text') {
      const font = Number(el.fontSize) || 20
      const text = String(el.originalText ?? el.text ?? '')
      if (!text.trim()) continue
      const m = measureText(text, font)
      shapes.push({
        ...base,
        type: 'text',
        text,
        font,
        fill: 'transparent',
        w: Math.max(round(w), m.w),
        h: Math.max(round(h), m.h)
      })
    }
  }
  return { shapes, skipped, deleted }
}

export function describeSkipped (skipped) {
  const parts = Object.entries(skipped).map(([t, n]) => (n > 1 ? `${t} ×${n}` : t))
  return parts.join(', ')
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
