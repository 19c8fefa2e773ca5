// A templates directory of a test's own (layers, build cache) that shares
// the machine's built base template through a symlink, and a build context.

import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BASE_RECIPE, recipeHash } from '@warren/orchestrator'
import { TEMPLATES_DIR } from '../helpers/node-fixture.js'

export function ownTemplatesDir(): { dir: string; layers: () => string[]; remove: () => void } {
  const dir = mkdtempSync('/tmp/warren-templates-')
  // This branch's base build (its recipe hash), current here whatever build
  // is current in the shared directory, whose builds are linked, not copied.
  const buildId = recipeHash(BASE_RECIPE, 100000)
  mkdirSync(join(dir, 'base'))
  symlinkSync(join(TEMPLATES_DIR, 'base', 'builds'), join(dir, 'base', 'builds'))
  copyFileSync(
    join(TEMPLATES_DIR, 'base', 'builds', buildId, 'template.json'),
    join(dir, 'base', 'template.json'),
  )
  return {
    dir,
    layers: () =>
      existsSync(join(dir, 'layers'))
        ? readdirSync(join(dir, 'layers')).filter((n) => /^[0-9a-f]{16}$/.test(n))
        : [],
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** A build context: app/ with files of several modes, and a Dockerfile-ready layout. */
export function buildContext(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'warren-context-'))
  mkdirSync(join(dir, 'app', 'sub'), { recursive: true })
  writeFileSync(join(dir, 'app', 'index.html'), '<h1>built by warren</h1>\n')
  writeFileSync(join(dir, 'app', 'run.sh'), '#!/bin/sh\necho run\n')
  chmodSync(join(dir, 'app', 'run.sh'), 0o755)
  writeFileSync(join(dir, 'app', 'secret.txt'), 'secret\n')
  chmodSync(join(dir, 'app', 'secret.txt'), 0o600)
  writeFileSync(join(dir, 'app', 'sub', 'nested.txt'), 'nested\n')
  writeFileSync(join(dir, 'notes.txt'), 'a single file\n')
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) }
}
