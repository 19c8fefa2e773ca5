import { readFileSync } from 'node:fs'

/**
 * Warren's version, as the packages are numbered (one version for all of
 * them): what a node reports when it registers.
 */
export const WARREN_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
).version
