// In-page synthetic pen stroke (same as tests/browser/scenarios.mjs).
/** In-page: a pen stroke of `n` pointer moves 4 ms apart; counts the Yjs updates it sent. */
export async function fastStroke (n) {
  const c = document.querySelector('[data-testid="board-canvas"]')
  const r = c.getBoundingClientRect()
  const ev = (type, i) => new PointerEvent(type, { pointerId: 7, pointerType: 'mouse', isPrimary: true, button: 0, buttons: type === 'pointerup' ? 0 : 1, clientX: r.left + 200 + i * 2, clientY: r.top + 500 + Math.sin(i / 10) * 60, bubbles: true, cancelable: true })
  const before = window.__inkstream.updatesSent
  const t0 = performance.now()
  c.dispatchEvent(ev('pointerdown', 0))
  for (let i = 1; i <= n; i++) {
    c.dispatchEvent(ev('pointermove', i))
    await new Promise((resolve) => setTimeout(resolve, 4))
  }
  c.dispatchEvent(ev('pointerup', n))
  const ms = performance.now() - t0
  await new Promise((resolve) => setTimeout(resolve, 100))
  return { moves: n, ms: Math.round(ms), updates: window.__inkstream.updatesSent - before }
}

