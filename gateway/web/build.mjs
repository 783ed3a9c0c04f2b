// Reproducible build of the Inkstream web app.
//   npm ci && npm run build      -> gateway/static/app/{index.html, app-<hash>.js, app-<hash>.css, build-manifest.json}
// The manifest records a hash of the source files (SOURCE_FILES below); the
// Python test tests/browser/test_build_fresh.py recomputes it to catch a stale
// committed build. Keep the file list rule in sync with that test.
import { createHash } from 'node:crypto'
import { readFileSync, readdirSync, statSync, mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { join, relative, dirname, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const here = dirname(fileURLToPath(import.meta.url))
const outdir = join(here, '..', 'static', 'app')

/** Source files that determine the build: top-level config + everything under src/. */
export function sourceFiles () {
  const files = ['build.mjs', 'index.html', 'package.json', 'package-lock.json']
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name)
      if (statSync(p).isDirectory()) walk(p)
      else files.push(relative(here, p).split(sep).join('/'))
    }
  }
  walk(join(here, 'src'))
  return files.sort()
}

/** sha256 over "path\0sha256(content)\n" for each file, sorted by path. */
export function sourceHash (files) {
  const h = createHash('sha256')
  for (const f of files) {
    const c = createHash('sha256').update(readFileSync(join(here, f))).digest('hex')
    h.update(`${f}\0${c}\n`)
  }
  return h.digest('hex')
}

async function build () {
  if (existsSync(outdir)) rmSync(outdir, { recursive: true, force: true })
  mkdirSync(outdir, { recursive: true })
  const result = await esbuild.build({
    absWorkingDir: here,
    entryPoints: ['src/main.js'],
    bundle: true,
    format: 'esm',
    minify: true,
    target: ['chrome100', 'firefox100', 'safari15.4', 'edge100'],
    entryNames: 'app-[hash]',
    assetNames: '[name]-[hash]',
    outdir,
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning'
  })
  const outputs = Object.keys(result.metafile.outputs).map((p) => relative(outdir, join(here, p)).split(sep).join('/'))
  const js = outputs.find((f) => f.endsWith('.js'))
  const css = outputs.find((f) => f.endsWith('.css'))
  const html = readFileSync(join(here, 'index.html'), 'utf8')
    .replace('%JS%', `/static/app/${js}`)
    .replace('%CSS%', `/static/app/${css}`)
  writeFileSync(join(outdir, 'index.html'), html)
  const files = sourceFiles()
  const pkg = (n) => JSON.parse(readFileSync(join(here, 'node_modules', n, 'package.json'), 'utf8')).version
  const manifest = {
    source_hash: sourceHash(files),
    hash_rule: 'sha256 over "<path>\\0<sha256 hex of file>\\n" for each source file, sorted by path (paths relative to gateway/web)',
    sources: files,
    outputs: { js, css, html: 'index.html' },
    versions: { esbuild: esbuild.version, yjs: pkg('yjs'), 'y-websocket': pkg('y-websocket') },
    build_command: 'cd gateway/web && npm ci && npm run build'
  }
  writeFileSync(join(outdir, 'build-manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
  for (const f of [...outputs, 'index.html']) {
    console.log(`  ${f.padEnd(28)} ${(statSync(join(outdir, f)).size / 1024).toFixed(1)} KiB`)
  }
  console.log(`source hash ${manifest.source_hash.slice(0, 16)}…`)
}

if (process.argv.includes('--watch')) {
  const { watch } = await import('node:fs')
  let t = 0
  await build()
  watch(join(here, 'src'), { recursive: true }, () => { clearTimeout(t); t = setTimeout(() => build().catch((e) => console.error(e.message)), 100) })
  console.log('watching src/ …')
} else {
  await build()
}
