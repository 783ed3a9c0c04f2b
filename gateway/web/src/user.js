// The local user's identity: a display name chosen once and a cursor colour,
// both stored in localStorage (no accounts).
const NAME_KEY = 'inkstream:name'
const COLOR_KEY = 'inkstream:color'

export const USER_COLORS = ['#e8590c', '#d6336c', '#ae3ec9', '#7048e8', '#4263eb', '#1c7ed6', '#0c8599', '#2b8a3e', '#e67700', '#c2255c']

const ADJ = ['Curious', 'Brave', 'Calm', 'Bright', 'Swift', 'Quiet', 'Clever', 'Sunny', 'Bold', 'Gentle', 'Lucky', 'Witty']
const ANIMALS = ['Otter', 'Fox', 'Heron', 'Panda', 'Lynx', 'Koala', 'Falcon', 'Badger', 'Dolphin', 'Owl', 'Tiger', 'Hedgehog']

function pick (a) { return a[Math.floor(Math.random() * a.length)] }

export function storedName () {
  try { return localStorage.getItem(NAME_KEY) || '' } catch { return '' }
}

export function suggestName () {
  return `${pick(ADJ)} ${pick(ANIMALS)}`
}

export function setName (name) {
  try { localStorage.setItem(NAME_KEY, name) } catch {}
}

export function userColor () {
  try {
    let c = localStorage.getItem(COLOR_KEY)
    if (!c) { c = pick(USER_COLORS); localStorage.setItem(COLOR_KEY, c) }
    return c
  } catch { return pick(USER_COLORS) }
}

export function initials (name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean)
  if (!parts.length) return '?'
  if (parts.length === 1) return parts[0].slice(0, 2).toUpperCase()
  return (parts[0][0] + parts[parts.length - 1][0]).toUpperCase()
}
