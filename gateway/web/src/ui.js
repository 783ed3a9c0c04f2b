// Small DOM helpers: element builder, toasts, dialogs.
export function h (tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'class') el.className = v
    else if (k === 'html') el.innerHTML = v
    else if (k === 'style' && typeof v === 'object') {
      for (const [sk, sv] of Object.entries(v)) {
        if (sk.startsWith('--')) el.style.setProperty(sk, sv)
        else el.style[sk] = sv
      }
    }
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v)
    else if (k === 'dataset') Object.assign(el.dataset, v)
    else el.setAttribute(k, v === true ? '' : v)
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue
    el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
  return el
}

let toastHost = null
/** A message at the bottom of the screen (text or a node); `closable` adds a close button for long ones. */
export function toast (message, { kind = 'info', timeout = 4000, closable = false } = {}) {
  if (!toastHost) {
    toastHost = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' })
    document.body.append(toastHost)
  }
  const leave = () => {
    if (t.classList.contains('leaving')) return
    t.classList.add('leaving')
    setTimeout(() => t.remove(), 250)
  }
  const close = closable
    ? h('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss', title: 'Dismiss', 'data-testid': 'toast-close', onclick: leave }, '×')
    : null
  const t = h('div', { class: `toast toast-${kind}${closable ? ' toast-closable' : ''}`, 'data-testid': 'toast' }, message, close)
  toastHost.append(t)
  toastTimers.set(t, setTimeout(leave, timeout))
  return t
}
const toastTimers = new WeakMap()

/** Keep a toast up until it is closed (someone is reading it). */
export function keepToast (t) {
  clearTimeout(toastTimers.get(t))
}

/** Modal prompt; resolves with the entered string or null. */
export function promptDialog ({ title, label, value = '', confirm = 'Continue', hint = '' }) {
  return new Promise((resolve) => {
    const input = h('input', { class: 'input', type: 'text', value, 'aria-label': label, maxlength: '40', 'data-testid': 'name-input' })
    const close = (v) => { back.remove(); resolve(v) }
    const form = h('form', {
      class: 'dialog',
      role: 'dialog',
      'aria-modal': 'true',
      'aria-labelledby': 'dlg-title',
      onsubmit: (e) => { e.preventDefault(); const v = input.value.trim(); if (v) close(v) }
    },
    h('h2', { id: 'dlg-title' }, title),
    hint ? h('p', { class: 'dialog-hint' }, hint) : null,
    h('label', { class: 'field-label' }, label, input),
    h('div', { class: 'dialog-actions' },
      h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'name-submit' }, confirm))
    )
    const back = h('div', { class: 'backdrop', onkeydown: (e) => { if (e.key === 'Escape' && value) close(null) } }, form)
    document.body.append(back)
    setTimeout(() => { input.focus(); input.select() }, 0)
  })
}

export function download (filename, blob) {
  const url = URL.createObjectURL(blob)
  const a = h('a', { href: url, download: filename, style: { display: 'none' } })
  document.body.append(a)
  a.click()
  setTimeout(() => { URL.revokeObjectURL(url); a.remove() }, 1000)
}

export function relativeTime (iso) {
  const t = typeof iso === 'number' ? iso : Date.parse(iso)
  if (!Number.isFinite(t)) return ''
  const s = Math.round((Date.now() - t) / 1000)
  if (s < 45) return 'just now'
  const m = Math.round(s / 60)
  if (m < 60) return `${m} min ago`
  const hr = Math.round(m / 60)
  if (hr < 24) return `${hr} h ago`
  const d = Math.round(hr / 24)
  if (d < 7) return `${d} d ago`
  return new Date(t).toLocaleDateString(undefined, { month: 'short', day: 'numeric', year: 'numeric' })
}
