// Inkstream web app entry: a tiny router over location.pathname.
//   /          boards list
//   /b/{id}    a board
import './styles.css'
import { BOARD_ID_RE } from './model.js'
import { mountBoard } from './board.js'
import { mountBoards } from './boards.js'
import { h } from './ui.js'

function start () {
  const root = document.getElementById('app')
  const path = location.pathname
  const m = /^\/b\/([^/]+)\/?$/.exec(path)
  if (m) {
    let id = ''
    try { id = decodeURIComponent(m[1]) } catch {}
    if (BOARD_ID_RE.test(id)) {
      document.body.classList.add('on-board')
      mountBoard(root, id)
      return
    }
  }
  if (path === '/' || path === '' || path === '/index.html') {
    mountBoards(root)
    return
  }
  root.replaceChildren(h('div', { class: 'not-found' },
    h('h1', {}, 'Board not found'),
    h('p', {}, 'Board ids are 1–128 characters: letters, digits, and - _ . ~'),
    h('a', { class: 'btn btn-primary', href: '/' }, 'All boards')))
}

start()
