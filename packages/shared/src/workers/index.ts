export * from './channel.js'
export * from './group.js'
export * from './node-host.js'
export * from './remote-node.js'
