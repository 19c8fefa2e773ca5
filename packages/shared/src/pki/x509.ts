// @peculiar/x509 finds its algorithm providers through tsyringe, which needs
// the Reflect metadata API: the polyfill is evaluated before the library.
import 'reflect-metadata'

export * as x509 from '@peculiar/x509'
