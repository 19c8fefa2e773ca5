// Headless Chromium from Debian's package (scripts/setup.sh installs it),
// driven by playwright-core: no browser download. Each browser gets a fresh
// profile, and the flags keep Chromium from reaching for the network on its
// own (updates, sync, field trials, QUIC): its only traffic is the page's,
// to the loopback Warren under test.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { type BrowserContext, chromium, type Page } from 'playwright-core'

export const CHROMIUM = process.env.WARREN_TEST_CHROMIUM || '/usr/bin/chromium'

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
  '--metrics-recording-only',
  '--no-default-browser-check',
]

/** Where failed tests' screenshots go (gitignored); printed when one is taken. */
export const ARTIFACTS_DIR = resolve(import.meta.dirname, '../../test-artifacts')

export interface TestBrowser {
  context: BrowserContext
  newPage(): Promise<Page>
  /** Screenshots every open page to test-artifacts/<name>-<n>.png; returns the paths. */
  screenshots(name: string): Promise<string[]>
  close(): Promise<void>
}

export async function startBrowser(): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'warren-chromium-'))
  let context: BrowserContext
  try {
    // A persistent context: the profile directory is this browser's alone.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1400, height: 900 },
    })
  } catch (err) {
    rmSync(profile, { recursive: true, force: true })
    throw err
  }
  return {
    context,
    newPage: () => context.newPage(),
    async screenshots(name) {
      mkdirSync(ARTIFACTS_DIR, { recursive: true })
      const paths: string[] = []
      const safe = name.replace(/[^a-z0-9-]+/gi, '-').slice(0, 80)
      for (const [i, page] of context.pages().entries()) {
        const path = join(ARTIFACTS_DIR, `${safe}-${i}.png`)
        await page.screenshot({ path, fullPage: true }).then(
          () => paths.push(path),
          () => {},
        )
      }
      return paths
    },
    async close() {
      try {
        await context.close()
      } finally {
        rmSync(profile, { recursive: true, force: true })
      }
    },
  }
}
