// Shared helpers for the browser scenarios: Debian Chromium via playwright-core.
import { chromium } from 'playwright-core'
import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const HERE = dirname(fileURLToPath(import.meta.url))
export const ARTIFACTS = process.env.INKSTREAM_ARTIFACTS || join(HERE, 'artifacts')
mkdirSync(ARTIFACTS, { recursive: true })

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']

export async function launch () {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    headless: true
  })
}

/** A browser context whose user already picked a display name (and colour). */
export async function userContext (browser, name, color, opts = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true, ...opts })
  await context.addInitScript(([n, c]) => {
    try {
      if (!localStorage.getItem('inkstream:name')) localStorage.setItem('inkstream:name', n)
      if (!localStorage.getItem('inkstream:color')) localStorage.setItem('inkstream:color', c)
    } catch {}
  }, [name, color])
  return context
}

/** Page errors, console errors and the console warnings that mean the app misuses an API. */
export const BAD_WARNINGS = /willReadFrequently|Multiple readback operations/
export function watchErrors (page, label, sink) {
  page.on('pageerror', (e) => sink.push(`${label}: pageerror ${e.message}`))
  page.on('console', (m) => {
    if (m.type() === 'error' || (m.type() === 'warning' && BAD_WARNINGS.test(m.text()))) sink.push(`${label}: console ${m.type()} ${m.text()}`)
  })
}


export async function openBoard (page, base, id) {
  await page.goto(`${base}/b/${id}`)
  await page.waitForSelector('[data-testid="board-canvas"]')
  await page.waitForFunction(() => document.querySelector('[data-testid="connection-status"]')?.dataset.state === 'connected', null, { timeout: 15000 })
  await page.waitForFunction(() => document.body.dataset.synced === 'true', null, { timeout: 15000 })
}

/** Drag on the canvas from (x0,y0) to (x1,y1) in page pixels, in `steps` moves. */
export async function drag (page, x0, y0, x1, y1, steps = 12) {
  await page.mouse.move(x0, y0)
  await page.mouse.down()
  await page.mouse.move(x1, y1, { steps })
  await page.mouse.up()
}

export async function snapshot (page) {
  return page.evaluate(() => window.__inkstream.snapshot())
}

export async function apiBoard (base, id) {
  const r = await fetch(`${base}/api/boards/${id}`)
  if (r.status === 404) return null
  if (!r.ok) throw new Error(`GET /api/boards/${id}: ${r.status}`)
  return r.json()
}

export async function waitFor (fn, { timeout = 10000, interval = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeout
  let last
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last } catch (e) { last = e }
    await new Promise((r) => setTimeout(r, interval))
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)?.slice(0, 300)})`)
}

export function randomBoardId (prefix = 't') {
  return `${prefix}-${Math.random().toString(36).slice(2, 10)}`
}
