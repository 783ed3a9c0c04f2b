// SVG export of board shapes (plain, sorted by z).
import { FONT_FAMILY, LINE_HEIGHT, STICKY_PAD } from './model.js'
import { arrowHead, isClosed, stickyLines, unionBounds } from './render.js'

function esc (s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]))
}

const r2 = (v) => Math.round(v * 100) / 100

function strokeD (p) {
  const n = p.length >> 1
  if (n === 0) return ''
  let d = `M${r2(p[0])} ${r2(p[1])}`
  if (n === 1) return d + `l0.01 0`
  if (n === 2) return d + `L${r2(p[2])} ${r2(p[3])}`
  for (let i = 1; i < n - 1; i++) {
    const x = p[2 * i]; const y = p[2 * i + 1]
    d += `Q${r2(x)} ${r2(y)} ${r2((x + p[2 * i + 2]) / 2)} ${r2((y + p[2 * i + 3]) / 2)}`
  }
  return d + `L${r2(p[2 * n - 2])} ${r2(p[2 * n - 1])}`
}

function polyD (p) {
  let d = ''
  for (let i = 0; i + 1 < p.length; i += 2) d += (i ? 'L' : 'M') + r2(p[i]) + ' ' + r2(p[i + 1])
  return d
}

function textSvg (lines, x, y, size, color) {
  const lh = size * LINE_HEIGHT
  const pad = (lh - size) / 2
  const spans = lines.map((l, i) => `<tspan x="${r2(x)}" y="${r2(y + i * lh + pad + size * 0.82)}">${esc(l) || ' '}</tspan>`).join('')
  return `<text font-family="${esc(FONT_FAMILY)}" font-weight="500" font-size="${size}" fill="${esc(color)}" xml:space="preserve">${spans}</text>`
}

export function shapeToSvg (s) {
  const attrs = `data-shape-id="${esc(s.id)}" data-type="${esc(s.type)}"`
  const op = s.opacity !== 1 ? ` opacity="${s.opacity}"` : ''
  let tr = ''
  if (s.rotation) {
    const cx = s.x + s.lx + s.lw / 2; const cy = s.y + s.ly + s.lh / 2
    tr = ` transform="rotate(${r2(s.rotation * 180 / Math.PI)} ${r2(cx)} ${r2(cy)})"`
  }
  const st = `stroke="${esc(s.stroke)}" stroke-width="${s.width}" stroke-linecap="round" stroke-linejoin="round"`
  const fill = `fill="${esc(s.fill || 'transparent')}"`
  let body = ''
  switch (s.type) {
    case 'rect': {
      const r = Math.max(0, Math.min(8, s.w / 8, s.h / 8))
      body = `<rect x="${r2(s.x)}" y="${r2(s.y)}" width="${r2(s.w)}" height="${r2(s.h)}" rx="${r2(r)}" ${fill} ${s.width > 0 ? st : 'stroke="none"'}/>`
      break
    }
    case 'ellipse':
      body = `<ellipse cx="${r2(s.x + s.w / 2)}" cy="${r2(s.y + s.h / 2)}" rx="${r2(s.w / 2)}" ry="${r2(s.h / 2)}" ${fill} ${s.width > 0 ? st : 'stroke="none"'}/>`
      break
    case 'stroke':
    case 'line':
    case 'arrow': {
      const p = s.points || [0, 0]
      const d = s.type === 'stroke' ? strokeD(p) : polyD(p)
      const f = s.type === 'line' && s.fill !== 'transparent' && isClosed(p) ? fill : 'fill="none"'
      body = `<g transform="translate(${r2(s.x)} ${r2(s.y)})"><path d="${d}" ${f} ${st}/>`
      if (s.type === 'arrow') {
        const h = arrowHead(p, s.width)
        if (h) body += `<path d="M${r2(h[0])} ${r2(h[1])}L${r2(h[2])} ${r2(h[3])}L${r2(h[4])} ${r2(h[5])}" fill="none" ${st}/>`
      }
      body += '</g>'
      break
    }
    case 'text':
      body = textSvg((s.text || '').split('\n'), s.x, s.y, s.font, s.stroke)
      break
    case 'sticky': {
      const bg = s.fill !== 'transparent' ? s.fill : '#fff3bf'
      body = `<rect x="${r2(s.x + 1)}" y="${r2(s.y + 3)}" width="${r2(s.w)}" height="${r2(s.h)}" rx="6" fill="rgba(30,30,46,0.08)"/>` +
        `<rect x="${r2(s.x)}" y="${r2(s.y)}" width="${r2(s.w)}" height="${r2(s.h)}" rx="6" fill="${esc(bg)}"/>` +
        textSvg(stickyLines(s), s.x + STICKY_PAD, s.y + STICKY_PAD, s.font, s.stroke)
      break
    }
    default:
      body = `<rect x="${r2(s.x)}" y="${r2(s.y)}" width="${r2(s.w)}" height="${r2(s.h)}" fill="#e9ecef" stroke="#adb5bd"/>`
  }
  return `<g ${attrs}${op}${tr}>${body}</g>`
}

export function exportSvg (shapes, title = 'Inkstream board') {
  const b = unionBounds(shapes) || { x: 0, y: 0, w: 100, h: 100 }
  const pad = 32
  const vb = { x: b.x - pad, y: b.y - pad, w: b.w + 2 * pad, h: b.h + 2 * pad }
  return `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="${r2(vb.x)} ${r2(vb.y)} ${r2(vb.w)} ${r2(vb.h)}" width="${Math.ceil(vb.w)}" height="${Math.ceil(vb.h)}">` +
    `<title>${esc(title)}</title>` +
    `<rect x="${r2(vb.x)}" y="${r2(vb.y)}" width="${r2(vb.w)}" height="${r2(vb.h)}" fill="#ffffff"/>` +
    shapes.map(shapeToSvg).join('\n') +
    '</svg>\n'
}
