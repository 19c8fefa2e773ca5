export { createEdgeProxy, type EdgeProxy } from './server.js'
