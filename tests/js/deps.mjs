// The Yjs client stack, resolved from this package's node_modules, for scripts that live outside
// it (benchmarks/loadgen.mjs). One module instance of `yjs` for everybody: y-websocket imports the
// same file, so there is no "Yjs was already imported" double-instance problem.
export * as Y from 'yjs'
export { WebsocketProvider } from 'y-websocket'
export { default as WebSocket } from 'ws'
