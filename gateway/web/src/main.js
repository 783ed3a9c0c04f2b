// Inkstream web app entry: a tiny router over location.pathname.
//   /          boards list
//   /b/{id}    a board
import './styles.css'
import { BOARD_ID_RE } from './model.js'
import { mountBoard } from './board.js'
import { mountBoards, newBoard } from './boards.js'
import { icon, LOGO } from './icons.js'
import { h } from './ui.js'

function start () {
  const root = document.getElementById('app')
  const path = location.pathname
  const m = /^\/b\/([^/]+)\/?$/.exec(path)
  if (m) {
    let id = null
    try { id = decodeURIComponent(m[1]) } catch {}
    if (id !== null && BOARD_ID_RE.test(id)) {
      document.body.classList.add('on-board')
      mountBoard(root, id)
      return
    }
    const bad = id ?? m[1]
    mountProblem(root, {
      title: 'This board link is not valid',
      text: [
        h('code', { class: 'bad-id', 'data-testid': 'bad-id', title: bad }, bad.length > 60 ? bad.slice(0, 57) + '…' : bad),
        bad.length > 128 ? ' is too long for a board id.' : ' is not a valid board id.',
        ' Board ids are 1–128 characters, using only letters, digits and ', h('code', {}, '- _ . ~'),
        '. Check the link you were given, or start a new board.'
      ]
    })
    return
  }
  if (path === '/' || path === '' || path === '/index.html') {
    mountBoards(root)
    return
  }
  mountProblem(root, { title: 'Page not found', text: ['There is nothing at this address. Your boards are on the home page.'] })
}

/** A dead end that is not one: what went wrong, and the ways on (all boards, a new board). */
function mountProblem (root, { title, text }) {
  document.title = `${title} · Inkstream`
  root.replaceChildren(h('div', { class: 'home problem-page' },
    h('header', { class: 'home-header' }, h('a', { class: 'brand', href: '/', html: LOGO + '<span>Inkstream</span>' })),
    h('main', { class: 'problem', 'data-testid': 'problem' },
      h('div', { class: 'problem-art', html: icon('link', 32) }),
      h('h1', {}, title),
      h('p', {}, ...text),
      h('div', { class: 'problem-actions' },
        h('a', { class: 'btn btn-lg', href: '/', 'data-testid': 'problem-home', html: icon('grid', 18) + '<span>All boards</span>' }),
        h('button', { class: 'btn btn-primary btn-lg', 'data-testid': 'problem-new-board', onclick: newBoard, html: icon('plus', 18) + '<span>New board</span>' })))))
}

start()
