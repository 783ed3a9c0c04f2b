// The web app's Excalidraw import (gateway/web/src/excalidraw.js) run in Node over scene texts
// given as a JSON array on stdin; prints one JSON array of results (test_import_parity.py compares
// them with the server's projections/excalidraw.py). Text is measured with a stand-in (no canvas).
import { readFileSync } from 'node:fs'

globalThis.document = {
  createElement: () => ({ getContext: () => ({ font: '', measureText: (s) => ({ width: s.length * 8 }) }) })
}
const { importExcalidraw } = await import('../../gateway/web/src/excalidraw.js')

const out = []
for (const text of JSON.parse(readFileSync(0, 'utf8'))) {
  try {
    out.push(importExcalidraw(text))
  } catch (e) {
    out.push({ error: `${e.name}: ${e.message}` })
  }
}
console.log(JSON.stringify(out))
