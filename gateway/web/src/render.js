// Canvas renderer for board shapes. Used for the live board, PNG export and
// board-list thumbnails. Shapes are plain objects from model.readShape().
import { FONT_FAMILY, LINE_HEIGHT, STICKY_PAD } from './model.js'

let measureCtx = null
function mctx () {
  if (!measureCtx) measureCtx = document.createElement('canvas').getContext('2d')
  return measureCtx
}

export function fontString (size) {
  return `500 ${size}px ${FONT_FAMILY}`
}

/** Size of a free text shape (unwrapped lines). */
export function measureText (text, size) {
  const ctx = mctx()
  ctx.font = fontString(size)
  const lines = (text || '').split('\n')
  let w = 0
  for (const l of lines) w = Math.max(w, ctx.measureText(l).width)
  return { w: Math.ceil(w) + 2, h: Math.ceil(lines.length * size * LINE_HEIGHT) }
}

/** Word-wrap text into lines that fit maxWidth. */
export function wrapText (text, size, maxWidth) {
  const ctx = mctx()
  ctx.font = fontString(size)
  const out = []
  for (const para of (text || '').split('\n')) {
    const words = para.split(/(\s+)/)
    let line = ''
    for (const word of words) {
      const trial = line + word
      if (line && ctx.measureText(trial).width > maxWidth && word.trim()) {
        out.push(line.trimEnd())
        line = word.trimStart()
        // break very long words
        while (ctx.measureText(line).width > maxWidth && line.length > 1) {
          let cut = line.length - 1
          while (cut > 1 && ctx.measureText(line.slice(0, cut)).width > maxWidth) cut--
          out.push(line.slice(0, cut))
          line = line.slice(cut)
        }
      } else {
        line = trial
      }
    }
    out.push(line)
  }
  return out
}

/** Smooth Path2D through a flat points array (quadratic curves through midpoints). */
function strokePath (p) {
  const path = new Path2D()
  const n = p.length >> 1
  if (n === 0) return path
  path.moveTo(p[0], p[1])
  if (n === 1) { path.lineTo(p[0] + 0.01, p[1]); return path }
  if (n === 2) { path.lineTo(p[2], p[3]); return path }
  for (let i = 1; i < n - 1; i++) {
    const x = p[2 * i]; const y = p[2 * i + 1]
    const nx = p[2 * i + 2]; const ny = p[2 * i + 3]
    path.quadraticCurveTo(x, y, (x + nx) / 2, (y + ny) / 2)
  }
  path.lineTo(p[2 * n - 2], p[2 * n - 1])
  return path
}

function polyPath (p) {
  const path = new Path2D()
  for (let i = 0; i + 1 < p.length; i += 2) {
    if (i === 0) path.moveTo(p[0], p[1])
    else path.lineTo(p[i], p[i + 1])
  }
  return path
}

export function isClosed (p) {
  return p && p.length >= 6 && Math.abs(p[0] - p[p.length - 2]) < 0.5 && Math.abs(p[1] - p[p.length - 1]) < 0.5
}

export function arrowHead (p, width) {
  const n = p.length >> 1
  if (n < 2) return null
  const x2 = p[2 * n - 2]; const y2 = p[2 * n - 1]
  // use the last point that is far enough to give a stable direction
  let k = n - 2
  while (k > 0 && Math.hypot(x2 - p[2 * k], y2 - p[2 * k + 1]) < 4) k--
  const x1 = p[2 * k]; const y1 = p[2 * k + 1]
  const a = Math.atan2(y2 - y1, x2 - x1)
  const len = Math.max(12, width * 4)
  const spread = Math.PI / 7
  return [x2 - len * Math.cos(a - spread), y2 - len * Math.sin(a - spread), x2, y2,
    x2 - len * Math.cos(a + spread), y2 - len * Math.sin(a + spread)]
}

function roundRect (ctx, x, y, w, h, r) {
  r = Math.max(0, Math.min(r, Math.abs(w) / 2, Math.abs(h) / 2))
  ctx.beginPath()
  ctx.moveTo(x + r, y)
  ctx.arcTo(x + w, y, x + w, y + h, r)
  ctx.arcTo(x + w, y + h, x, y + h, r)
  ctx.arcTo(x, y + h, x, y, r)
  ctx.arcTo(x, y, x + w, y, r)
  ctx.closePath()
}

export function stickyLines (s, greeked = false) {
  const key = s.text + '|' + s.w + '|' + s.font
  if (s._wrapKey !== key && greeked) return roughWrap(s.text, s.font, Math.max(10, s.w - 2 * STICKY_PAD))
  if (s._wrapKey !== key) {
    s._wrap = wrapText(s.text, s.font, Math.max(10, s.w - 2 * STICKY_PAD))
    s._wrapKey = key
  }
  return s._wrap
}

/**
 * Word wrap by an estimated width per character (no text measuring): enough for greeked text,
 * which draws each line as a bar — the first frame of a zoomed-out board need not measure every
 * word of every sticky note.
 */
function roughWrap (text, size, maxWidth) {
  const perLine = Math.max(1, Math.floor(maxWidth / (size * 0.55)))
  const out = []
  for (const para of (text || '').split('\n')) {
    let line = ''
    for (const word of para.split(/\s+/)) {
      if (line && line.length + 1 + word.length > perLine) { out.push(line); line = word } else line = line ? line + ' ' + word : word
    }
    out.push(line)
  }
  return out
}

/**
 * Draw one shape. ctx is in world coordinates. `zoom` drives level of detail.
 * opts.hideText: id of a shape whose text is being edited in place.
 */
export function drawShape (ctx, s, zoom, opts = {}) {
  const sw = s.bbox.w * zoom; const sh = s.bbox.h * zoom
  if (sw < 2 && sh < 2) {
    // Level of detail: a sub-2px shape is a dot.
    ctx.globalAlpha = s.opacity
    ctx.fillStyle = s.fill !== 'transparent' ? s.fill : s.stroke
    ctx.fillRect(s.bbox.x, s.bbox.y, Math.max(s.bbox.w, 1 / zoom), Math.max(s.bbox.h, 1 / zoom))
    return
  }
  ctx.globalAlpha = s.opacity
  // Level of detail: under 12 px on screen, boxes lose their rounded corners and stickies their
  // shadow (invisible at that size; a zoomed-out board draws thousands of them).
  const tiny = sw < 12 && sh < 12
  const rotated = !!s.rotation
  if (rotated) {
    ctx.save()
    const cx = s.x + s.lx + s.lw / 2; const cy = s.y + s.ly + s.lh / 2
    ctx.translate(cx, cy)
    ctx.rotate(s.rotation)
    ctx.translate(-cx, -cy)
  }
  ctx.lineWidth = s.width
  ctx.strokeStyle = s.stroke
  switch (s.type) {
    case 'rect': {
      if (tiny) { ctx.beginPath(); ctx.rect(s.x, s.y, s.w, s.h) } else roundRect(ctx, s.x, s.y, s.w, s.h, Math.min(8, s.w / 8, s.h / 8))
      if (s.fill !== 'transparent') { ctx.fillStyle = s.fill; ctx.fill() }
      if (s.width > 0) ctx.stroke()
      break
    }
    case 'ellipse': {
      ctx.beginPath()
      ctx.ellipse(s.x + s.w / 2, s.y + s.h / 2, s.w / 2, s.h / 2, 0, 0, Math.PI * 2)
      if (s.fill !== 'transparent') { ctx.fillStyle = s.fill; ctx.fill() }
      if (s.width > 0) ctx.stroke()
      break
    }
    case 'stroke':
    case 'line':
    case 'arrow': {
      const p = s.points || [0, 0]
      if (!s.path) s.path = s.type === 'stroke' ? strokePath(p) : polyPath(p)
      ctx.save()
      ctx.translate(s.x, s.y)
      if (s.type === 'line' && s.fill !== 'transparent' && isClosed(p)) {
        ctx.fillStyle = s.fill
        ctx.fill(s.path)
      }
      ctx.stroke(s.path)
      if (s.type === 'arrow') {
        const h = arrowHead(p, s.width)
        if (h) {
          ctx.beginPath()
          ctx.moveTo(h[0], h[1]); ctx.lineTo(h[2], h[3]); ctx.lineTo(h[4], h[5])
          ctx.stroke()
        }
      }
      ctx.restore()
      break
    }
    case 'sticky': {
      ctx.fillStyle = s.fill !== 'transparent' ? s.fill : '#fff3bf'
      if (tiny) {
        ctx.fillRect(s.x, s.y, s.w, s.h)
      } else {
        // cheap "shadow": an offset darker rect (canvas shadows are slow at scale)
        const fill = ctx.fillStyle
        ctx.fillStyle = 'rgba(30,30,46,0.08)'
        roundRect(ctx, s.x + 1, s.y + 3, s.w, s.h, 6)
        ctx.fill()
        ctx.fillStyle = fill
        roundRect(ctx, s.x, s.y, s.w, s.h, 6)
        ctx.fill()
      }
      if (opts.hideText !== s.id) drawLines(ctx, stickyLines(s, s.font * zoom < 4), s.x + STICKY_PAD, s.y + STICKY_PAD, s.font, s.stroke, zoom, s.w - 2 * STICKY_PAD)
      break
    }
    case 'text': {
      if (opts.hideText !== s.id) drawLines(ctx, (s.text || '').split('\n'), s.x, s.y, s.font, s.stroke, zoom, s.w)
      break
    }
    case 'image': {
      ctx.fillStyle = '#e9ecef'
      ctx.fillRect(s.x, s.y, s.w, s.h)
      ctx.strokeStyle = '#adb5bd'
      ctx.lineWidth = 1 / zoom
      ctx.strokeRect(s.x, s.y, s.w, s.h)
      break
    }
    default: {
      // unknown type written by another client: draw its box, dashed
      ctx.setLineDash([4 / zoom, 4 / zoom])
      ctx.strokeStyle = '#adb5bd'
      ctx.lineWidth = 1 / zoom
      ctx.strokeRect(s.x, s.y, s.w, s.h)
      ctx.setLineDash([])
    }
  }
  if (rotated) ctx.restore()
}

function drawLines (ctx, lines, x, y, size, color, zoom, maxW) {
  const lh = size * LINE_HEIGHT
  if (size * zoom < 4) {
    // Level of detail: greeked text
    ctx.fillStyle = color
    const a = ctx.globalAlpha
    ctx.globalAlpha = a * 0.25
    for (let i = 0; i < lines.length; i++) {
      if (lines[i]) ctx.fillRect(x, y + i * lh + size * 0.3, Math.min(maxW || 1e9, lines[i].length * size * 0.5), size * 0.5)
    }
    ctx.globalAlpha = a
    return
  }
  ctx.font = fontString(size)
  ctx.fillStyle = color
  ctx.textBaseline = 'top'
  const pad = (lh - size) / 2
  for (let i = 0; i < lines.length; i++) ctx.fillText(lines[i], x, y + i * lh + pad)
}

/**
 * Dotted background grid in screen space (CSS px; `dpr` device px each). `clip`, in the same CSS
 * px: draw only the dots inside it (repainting part of a bitmap).
 */
export function drawGrid (ctx, cam, width, height, dpr, clip = null) {
  let step = 24 * cam.zoom
  while (step < 12) step *= 4
  while (step > 96) step /= 4
  let ox = -(cam.x * cam.zoom) % step
  let oy = -(cam.y * cam.zoom) % step
  if (ox < 0) ox += step
  if (oy < 0) oy += step
  let x0 = 0; let y0 = 0; let x1 = width; let y1 = height
  if (clip) {
    x0 = Math.max(0, clip.x0 - 2); y0 = Math.max(0, clip.y0 - 2)
    x1 = Math.min(width, clip.x1 + 2); y1 = Math.min(height, clip.y1 + 2)
  }
  const firstX = ox + Math.max(0, Math.ceil((x0 - ox) / step)) * step
  const firstY = oy + Math.max(0, Math.ceil((y0 - oy) / step)) * step
  ctx.fillStyle = '#d5d8e0'
  const r = 1.1 * dpr
  for (let x = firstX; x < x1; x += step) {
    for (let y = firstY; y < y1; y += step) {
      ctx.fillRect(x * dpr - r / 2, y * dpr - r / 2, r, r)
    }
  }
}

/** Render a list of shapes (already sorted) into a canvas context fitted to bounds. */
export function renderToCanvas (canvas, shapes, bounds, scale, background = '#ffffff') {
  const ctx = canvas.getContext('2d')
  ctx.save()
  if (background) {
    ctx.fillStyle = background
    ctx.fillRect(0, 0, canvas.width, canvas.height)
  }
  ctx.setTransform(scale, 0, 0, scale, -bounds.x * scale, -bounds.y * scale)
  ctx.lineCap = 'round'
  ctx.lineJoin = 'round'
  for (const s of shapes) drawShape(ctx, s, scale)
  ctx.restore()
}

export function unionBounds (shapes) {
  let minX = Infinity; let minY = Infinity; let maxX = -Infinity; let maxY = -Infinity
  for (const s of shapes) {
    const b = s.bbox
    if (b.x < minX) minX = b.x
    if (b.y < minY) minY = b.y
    if (b.x + b.w > maxX) maxX = b.x + b.w
    if (b.y + b.h > maxY) maxY = b.y + b.h
  }
  if (minX === Infinity) return null
  return { x: minX, y: minY, w: maxX - minX, h: maxY - minY }
}
