export * from './authenticate.js'
export * from './secret.js'
export * from './server.js'
export * from './transport.js'
