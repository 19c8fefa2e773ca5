import { existsSync } from 'node:fs'
import { join } from 'node:path'

/**
 * The path of `link-gso` (native/link-gso.c, built with the package by
 * node-gyp), which reads and sets a link's IPv4 GSO/GRO size limits; undefined
 * when it was not built.
 */
export function linkGsoTool(): string | undefined {
  const path = join(import.meta.dirname, '../native/build/Release/link-gso')
  return existsSync(path) ? path : undefined
}
