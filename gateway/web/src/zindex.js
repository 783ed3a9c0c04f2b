// Fractional indexing for the `z` field (stacking order).
//
// Keys are base-62 strings that compare correctly with plain string comparison
// (ASCII code-unit order, identical in JS, Python and Mongo), so any reader can
// sort shapes by `z` (ties broken by shape id) without knowing this algorithm.
// Algorithm: "Realtime editing of ordered sequences" (Figma) as implemented by
// rocicorp/fractional-indexing (CC0): an integer part whose length is encoded in
// its first character, so appending at the end keeps keys short (O(log n)).

export const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
const ZERO = DIGITS[0]
const SMALLEST_INT = 'A' + ZERO.repeat(26)

function midpoint (a, b) {
  if (b !== null && a >= b) throw new Error(`midpoint: ${a} >= ${b}`)
  if (a.slice(-1) === ZERO || (b && b.slice(-1) === ZERO)) throw new Error('trailing zero')
  if (b) {
    let n = 0
    while ((a[n] || ZERO) === b[n]) n++
    if (n > 0) return b.slice(0, n) + midpoint(a.slice(n), b.slice(n))
  }
  const da = a ? DIGITS.indexOf(a[0]) : 0
  const db = b !== null ? DIGITS.indexOf(b[0]) : DIGITS.length
  if (db - da > 1) return DIGITS[Math.round(0.5 * (da + db))]
  if (b && b.length > 1) return b.slice(0, 1)
  return DIGITS[da] + midpoint(a.slice(1), null)
}

function intLength (head) {
  if (head >= 'a' && head <= 'z') return head.charCodeAt(0) - 97 + 2
  if (head >= 'A' && head <= 'Z') return 90 - head.charCodeAt(0) + 2
  throw new Error('invalid order key head: ' + head)
}

function intPart (key) {
  const len = intLength(key[0])
  if (len > key.length) throw new Error('invalid order key: ' + key)
  return key.slice(0, len)
}

function validate (key) {
  if (key === SMALLEST_INT) throw new Error('invalid order key')
  const i = intPart(key)
  const f = key.slice(i.length)
  if (f.slice(-1) === ZERO) throw new Error('invalid order key')
  for (const ch of key) if (DIGITS.indexOf(ch) < 0) throw new Error('invalid order key')
}

function incrementInt (x) {
  const [head, ...digs] = x.split('')
  let carry = true
  for (let i = digs.length - 1; carry && i >= 0; i--) {
    const d = DIGITS.indexOf(digs[i]) + 1
    if (d === DIGITS.length) digs[i] = ZERO
    else { digs[i] = DIGITS[d]; carry = false }
  }
  if (carry) {
    if (head === 'Z') return 'a' + ZERO
    if (head === 'z') return null
    const h = String.fromCharCode(head.charCodeAt(0) + 1)
    if (h > 'a') digs.push(ZERO)
    else digs.pop()
    return h + digs.join('')
  }
  return head + digs.join('')
}

function decrementInt (x) {
  const [head, ...digs] = x.split('')
  let borrow = true
  for (let i = digs.length - 1; borrow && i >= 0; i--) {
    const d = DIGITS.indexOf(digs[i]) - 1
    if (d === -1) digs[i] = DIGITS.slice(-1)
    else { digs[i] = DIGITS[d]; borrow = false }
  }
  if (borrow) {
    if (head === 'a') return 'Z' + DIGITS.slice(-1)
    if (head === 'A') return null
    const h = String.fromCharCode(head.charCodeAt(0) - 1)
    if (h < 'Z') digs.push(DIGITS.slice(-1))
    else digs.pop()
    return h + digs.join('')
  }
  return head + digs.join('')
}

function strictBetween (a, b) {
  if (a !== null) validate(a)
  if (b !== null) validate(b)
  if (a !== null && b !== null && a >= b) throw new Error(`${a} >= ${b}`)
  if (a === null) {
    if (b === null) return 'a' + ZERO
    const ib = intPart(b)
    const fb = b.slice(ib.length)
    if (ib === SMALLEST_INT) return ib + midpoint('', fb)
    if (ib < b) return ib
    const r = decrementInt(ib)
    if (r === null) throw new Error('cannot decrement any more')
    return r
  }
  if (b === null) {
    const ia = intPart(a)
    const fa = a.slice(ia.length)
    const i = incrementInt(ia)
    return i === null ? ia + midpoint(fa, null) : i
  }
  const ia = intPart(a)
  const fa = a.slice(ia.length)
  const ib = intPart(b)
  const fb = b.slice(ib.length)
  if (ia === ib) return ia + midpoint(fa, fb)
  const i = incrementInt(ia)
  if (i === null) throw new Error('cannot increment any more')
  if (i < b) return i
  return ia + midpoint(fa, null)
}

/**
 * A key strictly between a and b (either may be null = open end).
 * Tolerates keys written by other clients that are not valid fractional
 * indices: it then falls back to a key that still sorts correctly.
 */
export function keyBetween (a, b) {
  a = a || null
  b = b || null
  try {
    return strictBetween(a, b)
  } catch (e) {
    // Fallbacks for foreign keys: extending a string sorts right after it.
    if (a !== null && (b === null || a + 'V' < b)) return a + 'V'
    if (a === null && b !== null) {
      // something below b: shorten/decrease the first character
      const c = b.charCodeAt(0)
      if (c > 48) return String.fromCharCode(c - 1) + 'V'
      return b.slice(0, -1) || '0'
    }
    return (a || '') + 'V'
  }
}

/** n keys in ascending order, all strictly between a and b. */
export function keysBetween (a, b, n) {
  if (n <= 0) return []
  if (n === 1) return [keyBetween(a, b)]
  if (b == null) {
    const out = []
    let k = a || null
    for (let i = 0; i < n; i++) { k = keyBetween(k, null); out.push(k) }
    return out
  }
  const mid = Math.floor(n / 2)
  const m = keyBetween(a, b)
  return [...keysBetween(a, m, mid), m, ...keysBetween(m, b, n - mid - 1)]
}
