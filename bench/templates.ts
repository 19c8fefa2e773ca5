// Custom templates against a `warren up` of its own (its own templates
// directory, the machine's base template linked in), each figure beside a
// baseline measured in the same run:
//   Sandbox.create + first commands.run from a custom template (three
//   layers over base, its env and workdir) vs the same from `base`: ≈ 1×
//   is the claim, a template's layers cost a create nothing (a start
//   command, when it has one, costs what it takes to become ready)
//   cached rebuild of that template (every step a hit) vs a cold build of
//   it (every step run again: skipCache)
// Privileged (runc, netns, nft); no traffic leaves the machine. Build first:
//   npx tsx bench/templates.ts [--runs 15] [--builds 3] [--json]
// With --json the last line is the headline figures as one JSON object.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Sandbox, Template } from 'e2b'
import { startWarren } from '../tests/helpers/warren-fixture.js'
import { ownTemplatesDir } from '../tests/templates/helpers.js'
import { median, pct } from './lib/stats.js'

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '15' },
    builds: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
  },
})
const RUNS = Number(values.runs)
const BUILDS = Number(values.builds)
const WARMUP = 2
const NAME = 'bench-app'

const now = () => performance.now()
const fmt = (v: number) => (v >= 10_000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`)

function context(): string {
  const dir = mkdtempSync(join(tmpdir(), 'warren-bench-context-'))
  mkdirSync(join(dir, 'app'))
  writeFileSync(join(dir, 'app', 'index.html'), '<h1>bench</h1>\n')
  writeFileSync(join(dir, 'app', 'data.bin'), Buffer.alloc(8 * 2 ** 20, 7))
  return dir
}

/** COPY, RUN (as root and as user), ENV and WORKDIR: a typical app's layers. */
const appTemplate = (dir: string) =>
  Template({ fileContextPath: dir })
    .fromTemplate('base')
    .copy('app', '/opt/app')
    .runCmd('mkdir -p /opt/data && head -c 16777216 /dev/urandom > /opt/data/blob', {
      user: 'root',
    })
    .runCmd('echo built > ~/built-by-user')
    .setEnvs({ APP_MODE: 'bench' })
    .setWorkdir('/opt/app')

async function main(): Promise<void> {
  const templates = ownTemplatesDir()
  const ctx = context()
  const warren = await startWarren({ env: { WARREN_TEMPLATES_DIR: templates.dir } })
  try {
    const sdk = warren.sdk
    process.stderr.write('first build of the custom template…\n')
    await Template.build(appTemplate(ctx), NAME, sdk)

    // 1. Create → first command, base and custom alternating (same load for both).
    const times: Record<'base' | 'custom', number[]> = { base: [], custom: [] }
    for (let i = 0; i < WARMUP + RUNS; i++) {
      for (const [kind, ref] of [
        ['base', 'base'],
        ['custom', NAME],
      ] as const) {
        const t0 = now()
        const sbx = await Sandbox.create(ref, sdk)
        await sbx.commands.run('true')
        const ms = now() - t0
        await sbx.kill()
        if (i >= WARMUP) times[kind].push(ms)
      }
      process.stderr.write(`\rcreate + first command: ${i + 1}/${WARMUP + RUNS}   `)
    }
    process.stderr.write('\n')

    // 2. Cold builds (every step again) and cached rebuilds, alternating.
    const builds: Record<'cold' | 'cached', number[]> = { cold: [], cached: [] }
    for (let i = 0; i < BUILDS; i++) {
      for (const kind of ['cold', 'cached'] as const) {
        const t0 = now()
        await Template.build(appTemplate(ctx), NAME, {
          ...sdk,
          ...(kind === 'cold' ? { skipCache: true } : {}),
        })
        builds[kind].push(now() - t0)
      }
      process.stderr.write(`\rbuilds: ${i + 1}/${BUILDS}   `)
    }
    process.stderr.write('\n')

    const createRatio = median(times.custom) / median(times.base)
    const buildRatio = median(builds.cached) / median(builds.cold)
    console.log(`\nCustom templates (${RUNS} creates each, ${BUILDS} builds each)`)
    console.log('| measure | median | p95 | baseline (same run) | median | ratio |')
    console.log('|---|---|---|---|---|---|')
    console.log(
      `| create + first command, custom template | ${fmt(median(times.custom))} | ${fmt(pct(times.custom, 95))} | from base | ${fmt(median(times.base))} | ${createRatio.toFixed(2)}× |`,
    )
    console.log(
      `| cached rebuild (every step a hit) | ${fmt(median(builds.cached))} | ${fmt(pct(builds.cached, 95))} | cold build (skipCache) | ${fmt(median(builds.cold))} | ${buildRatio.toFixed(3)}× |`,
    )
    if (values.json) {
      console.log(
        JSON.stringify({
          bench: 'templates',
          createCustomMs: round(median(times.custom)),
          createBaseMs: round(median(times.base)),
          createCustomVsBase: round(createRatio, 3),
          rebuildCachedMs: round(median(builds.cached)),
          buildColdMs: round(median(builds.cold)),
          cachedVsCold: round(buildRatio, 4),
        }),
      )
    }
  } finally {
    await warren.teardown()
    templates.remove()
    rmSync(ctx, { recursive: true, force: true })
  }
}

const round = (v: number, digits = 1) => Number(v.toFixed(digits))

await main()
