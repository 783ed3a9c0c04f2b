// JSON as the server reads it (Python's json.loads), and values quoted as the server quotes them
// (Python's repr) -- for the Excalidraw import (excalidraw.js), so that a file gets the same
// verdicts and the same reasons in the browser as through the server's import
// (projections/excalidraw.py). What differs from JSON.parse:
//   - NaN, Infinity and -Infinity are read as those numbers (Python accepts them; JSON.parse
//     would refuse the whole file, where the server skips just the elements they are in);
//   - an integer of more than 4,300 digits makes the file unreadable (Python's limit);
//   - a number whose Python repr a JS number cannot tell -- 5.0 (not 5), an integer beyond 2^53
//     (Python keeps every digit, 1e400 as an integer too) -- is remembered, for `pyShow`;
//   - objects have no prototype, so an element's "__proto__" or "constructor" is just a field.

const MAX_INT_DIGITS = 4300 // sys.get_int_max_str_digits()
const MAX_DEPTH = 900 // Python's json gives up near its recursion limit (1000 frames)
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y
const HEX4 = /^[0-9a-fA-F]{4}$/
const ESCAPES = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' }

/** holder (array or object) -> Map(key -> 'float' | the digits of a big integer), for pyShow. */
const TOKENS = new WeakMap()

/** Parse `text` as Python's json.loads would; throws SyntaxError with Python's wording. */
export function parseJson (text) {
  let i = 0
  let token = null // what the last number needs remembered, if anything
  const n = text.length
  const fail = (what, at = i) => {
    const before = text.slice(0, at)
    const line = before.split('\n').length
    const col = at - before.lastIndexOf('\n')
    throw new SyntaxError(`${what}: line ${line} column ${col} (char ${at})`)
  }
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i)
      if (c === 32 || c === 9 || c === 10 || c === 13) i++
      else break
    }
  }
  const remember = (holder, key) => {
    let m = TOKENS.get(holder)
    if (token !== null) {
      if (!m) TOKENS.set(holder, (m = new Map()))
      m.set(key, token)
    } else if (m) m.delete(key)
  }
  function string () {
    const start = i
    i++ // opening quote
    let out = ''
    let run = i
    for (;;) {
      if (i >= n) fail('Unterminated string starting at', start)
      const c = text.charCodeAt(i)
      if (c === 34) { out += text.slice(run, i); i++; return out }
      if (c < 32) fail('Invalid control character at')
      if (c !== 92) { i++; continue }
      out += text.slice(run, i)
      const e = text[i + 1]
      if (e === 'u') {
        const hex = text.slice(i + 2, i + 6)
        if (!HEX4.test(hex)) fail('Invalid \\uXXXX escape', i + 1)
        out += String.fromCharCode(parseInt(hex, 16))
        i += 6
      } else if (e !== undefined && Object.hasOwn(ESCAPES, e)) {
        out += ESCAPES[e]
        i += 2
      } else {
        fail(e === undefined ? 'Unterminated string starting at' : 'Invalid \\escape', e === undefined ? start : i)
      }
      run = i
    }
  }
  function number () {
    NUMBER.lastIndex = i
    const m = NUMBER.exec(text)
    if (!m) fail('Expecting value')
    i += m[0].length
    const v = Number(m[0])
    if (m[1] !== undefined || m[2] !== undefined) {
      if (Number.isInteger(v)) token = 'float' // 5.0, 1e3, -0.0: Python says 5.0, 1000.0, -0.0
    } else {
      if (m[0].length - (m[0][0] === '-' ? 1 : 0) > MAX_INT_DIGITS) {
        fail(`Exceeds the limit (${MAX_INT_DIGITS} digits) for integer string conversion`, i - m[0].length)
      }
      if (!Number.isSafeInteger(v)) token = m[0] // Python keeps the integer exactly
    }
    return v
  }
  function value (depth) {
    token = null
    ws()
    if (i >= n) fail('Expecting value')
    const c = text[i]
    if (c === '"') return string()
    if (c === '{' || c === '[') {
      if (depth >= MAX_DEPTH) fail('Nested too deeply')
      return c === '{' ? object(depth + 1) : array(depth + 1)
    }
    for (const [word, v] of WORDS) {
      if (text.startsWith(word, i)) { i += word.length; return v }
    }
    return number()
  }
  function object (depth) {
    const obj = Object.create(null)
    i++
    ws()
    if (text[i] === '}') { i++; return obj }
    for (;;) {
      ws()
      if (text[i] !== '"') fail('Expecting property name enclosed in double quotes')
      const key = string()
      ws()
      if (text[i] !== ':') fail("Expecting ':' delimiter")
      i++
      obj[key] = value(depth)
      remember(obj, key)
      ws()
      if (text[i] === ',') { i++; continue }
      if (text[i] === '}') { i++; token = null; return obj }
      fail("Expecting ',' delimiter")
    }
  }
  function array (depth) {
    const arr = []
    i++
    ws()
    if (text[i] === ']') { i++; return arr }
    for (;;) {
      arr.push(value(depth))
      remember(arr, arr.length - 1)
      ws()
      if (text[i] === ',') { i++; continue }
      if (text[i] === ']') { i++; token = null; return arr }
      fail("Expecting ',' delimiter")
    }
  }
  const out = value(0)
  ws()
  if (i !== n) fail('Extra data')
  return out
}

const WORDS = [['null', null], ['true', true], ['false', false], ['NaN', NaN], ['Infinity', Infinity], ['-Infinity', -Infinity]]

// -- Python's repr -------------------------------------------------------------------------------

/** repr() of a Python float. */
export function pyFloat (v) {
  if (Number.isNaN(v)) return 'nan'
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf'
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0'
  const sign = v < 0 ? '-' : ''
  const [mant, e] = Math.abs(v).toExponential().split('e') // shortest digits that read back as v
  const digits = mant.replace('.', '')
  const exp = Number(e)
  if (exp < -4 || exp >= 16) {
    return `${sign}${digits[0]}${digits.length > 1 ? '.' + digits.slice(1) : ''}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`
  const whole = digits.slice(0, exp + 1).padEnd(exp + 1, '0')
  return `${sign}${whole}.${digits.slice(exp + 1) || '0'}`
}

// Characters str.isprintable() calls not printable (other than the ASCII ones handled first).
const UNPRINTABLE = /^[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]$/u

/** repr() of a Python str, of at most the first `limit` UTF-16 units of `s` (the quote is chosen over all of it). */
export function pyStr (s, limit = Infinity) {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'"
  let out = quote
  for (const ch of s.length > limit ? s.slice(0, limit) : s) {
    const c = ch.codePointAt(0)
    if (ch === quote || ch === '\\') out += '\\' + ch
    else if (ch === '\t') out += '\\t'
    else if (ch === '\n') out += '\\n'
    else if (ch === '\r') out += '\\r'
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0')
    else if (c < 0x7f || !UNPRINTABLE.test(ch)) out += ch
    else if (c <= 0xff) out += '\\x' + c.toString(16).padStart(2, '0')
    else if (c <= 0xffff) out += '\\u' + c.toString(16).padStart(4, '0')
    else out += '\\U' + c.toString(16).padStart(8, '0')
  }
  return s.length > limit ? out : out + quote
}

const BUDGET = 100 // UTF-16 units: more than enough for the 40 characters pyShow keeps

function reprInto (out, v, token) {
  if (out.s.length > BUDGET) return
  if (v === null || v === undefined) out.s += 'None'
  else if (v === true) out.s += 'True'
  else if (v === false) out.s += 'False'
  else if (typeof v === 'string') out.s += pyStr(v, BUDGET)
  else if (typeof v === 'number') {
    if (token === 'float') out.s += pyFloat(v)
    else if (typeof token === 'string') out.s += token
    else out.s += Number.isSafeInteger(v) ? String(v) : pyFloat(v)
  } else if (Array.isArray(v)) {
    const tokens = TOKENS.get(v)
    out.s += '['
    for (let k = 0; k < v.length && out.s.length <= BUDGET; k++) {
      if (k) out.s += ', '
      reprInto(out, v[k], tokens?.get(k))
    }
    out.s += ']'
  } else if (typeof v === 'object') {
    const tokens = TOKENS.get(v)
    out.s += '{'
    let first = true
    for (const k of Object.keys(v)) {
      if (out.s.length > BUDGET) break
      out.s += (first ? '' : ', ') + pyStr(k, BUDGET) + ': '
      first = false
      reprInto(out, v[k], tokens?.get(k))
    }
    out.s += '}'
  } else out.s += String(v)
}

/**
 * `holder[key]` quoted as the server's `_show` quotes a value: its Python repr, cut to 40
 * characters ("…" for the rest). A missing key reads as None, like dict.get.
 */
export function pyShow (holder, key) {
  const own = holder !== null && typeof holder === 'object' && Object.hasOwn(holder, key)
  const out = { s: '' }
  reprInto(out, own ? holder[key] : undefined, own ? TOKENS.get(holder)?.get(key) : undefined)
  const chars = Array.from(out.s)
  return chars.length <= 40 ? out.s : chars.slice(0, 39).join('') + '…'
}
