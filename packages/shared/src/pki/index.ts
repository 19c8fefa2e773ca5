// Warren's PKI: CAs, server and client certificates (ECDSA P-256), stored as
// root-only PEM. Imported as `@warren/shared/pki`, apart from the package's
// main entry, so that processes without TLS never load the X.509 library.
export * from './authority.js'
export * from './ca-store.js'
export * from './files.js'
export * from './keys.js'
export * from './names.js'
export { x509 } from './x509.js'
