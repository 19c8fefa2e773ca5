// The web dashboard in a real browser (Debian's Chromium through
// playwright-core) against a real `warren up`: a bad key is refused; signed
// in, a sandbox created through the SDK appears without a reload, its
// countdown runs, and killing it from the page removes it (from the page and
// from Warren). The key never appears in a URL or in Warren's log. A failed
// test leaves screenshots in test-artifacts/ and prints their paths.
import { readFileSync } from 'node:fs'
import { Sandbox } from 'e2b'
import type { Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { api } from '../helpers/api-client.js'
import { startBrowser, type TestBrowser } from '../helpers/browser.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
let browser: TestBrowser
const made: string[] = []
/** Every URL the pages asked for: the key must be in none. */
const requested: string[] = []

beforeAll(async () => {
  browser = await startBrowser()
  browser.context.on('request', (r) => requested.push(r.url()))
})
afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail') {
    for (const path of await browser.screenshots(`dashboard-${ctx.task.name}`))
      console.error(`[dashboard] screenshot of the failed test: ${path}`)
  }
  for (const id of made.splice(0)) await Sandbox.kill(id, warren().sdk).catch(() => {})
  for (const p of browser.context.pages()) await p.close()
})
afterAll(async () => {
  await browser?.close()
})

/** The dashboard, signed out (the profile's storage is shared by its pages). */
async function open(): Promise<Page> {
  const page = await browser.newPage()
  const res = await page.goto(`${warren().apiUrl}/dashboard/`)
  expect(res?.status()).toBe(200)
  const form = page.getByPlaceholder('e2b_…')
  const signOut = page.getByRole('button', { name: 'Sign out' })
  await form.or(signOut).waitFor()
  if (await signOut.isVisible()) await signOut.click()
  await form.waitFor()
  return page
}

async function signIn(page: Page, key: string): Promise<void> {
  await page.getByPlaceholder('e2b_…').fill(key)
  await page.getByRole('button', { name: 'Sign in' }).click()
}

/** `1h 02m 05s` → seconds. */
function seconds(text: string): number {
  let s = 0
  for (const [, n, unit] of text.matchAll(/(\d+)([hms])/g))
    s += Number(n) * (unit === 'h' ? 3600 : unit === 'm' ? 60 : 1)
  return s
}

describe('dashboard', () => {
  it('is served with its content types, caching and CSP', async () => {
    const index = await fetch(`${warren().apiUrl}/dashboard/`)
    expect(index.status).toBe(200)
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(index.headers.get('cache-control')).toBe('no-cache')
    expect(index.headers.get('content-security-policy')).toContain("script-src 'self'")
    const script = /src="(\/dashboard\/assets\/[^"]+\.js)"/.exec(await index.text())?.[1]
    expect(script).toBeDefined()
    const js = await fetch(`${warren().apiUrl}${script}`)
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(js.headers.get('cache-control')).toContain('immutable')
  })

  it('refuses a bad key and stays signed out', async () => {
    const page = await open()
    for (const bad of [`e2b_${'0'.repeat(40)}`, 'not-a-key']) {
      await signIn(page, bad)
      await expect
        .poll(() => page.getByRole('alert').textContent())
        .toContain('This API key was refused.')
      expect(await page.getByTestId('team').count()).toBe(0)
      expect(await page.evaluate("localStorage.getItem('warren.apiKey')")).toBeNull()
    }
  })

  it('shows a sandbox made with the SDK, counts it down, and kills it from the page', async () => {
    const page = await open()
    await signIn(page, warren().apiKey)
    await expect.poll(() => page.getByTestId('team').textContent()).toContain('default')
    // Set once: a reload would lose it.
    await page.evaluate('window.warrenNoReload = true')

    const sbx = await Sandbox.create({
      ...warren().sdk,
      timeoutMs: 120_000,
      metadata: { purpose: 'dashboard-test' },
    })
    made.push(sbx.sandboxId)
    const row = page.locator(`tr[data-sandbox-id="${sbx.sandboxId}"]`)
    await row.waitFor({ timeout: 15_000 })
    expect(await row.textContent()).toContain('purpose=dashboard-test')
    expect(await row.textContent()).toContain('running')

    // The countdown runs between refreshes, and stays within the lease.
    const countdown = row.getByTestId('countdown')
    const first = seconds((await countdown.textContent()) ?? '')
    expect(first).toBeGreaterThan(60)
    expect(first).toBeLessThanOrEqual(120)
    await expect
      .poll(async () => seconds((await countdown.textContent()) ?? ''), { timeout: 10_000 })
      .toBeLessThanOrEqual(first - 2)

    // The detail: charts fed by the metrics route, network rules.
    await row.getByRole('button', { name: sbx.sandboxId }).click()
    await expect.poll(() => page.getByTestId('sandbox-detail').textContent()).toContain('CPU')

    // Kill asks once, then acts.
    await row.getByRole('button', { name: 'Kill' }).click()
    await row.getByRole('button', { name: 'Kill?' }).click()
    await row.waitFor({ state: 'detached', timeout: 15_000 })
    expect((await api(warren(), 'GET', `/sandboxes/${sbx.sandboxId}`)).status).toBe(404)
    made.splice(made.indexOf(sbx.sandboxId), 1)

    expect(await page.evaluate('window.warrenNoReload')).toBe(true)
  })

  it('pauses, resumes and sets the timeout of a sandbox from the page', async () => {
    const page = await open()
    await signIn(page, warren().apiKey)
    const sbx = await Sandbox.create({ ...warren().sdk, timeoutMs: 300_000 })
    made.push(sbx.sandboxId)
    const row = page.locator(`tr[data-sandbox-id="${sbx.sandboxId}"]`)
    await row.waitFor({ timeout: 15_000 })

    await row.getByRole('button', { name: 'Timeout' }).click()
    await row.getByLabel('timeout in seconds').fill('40')
    await row.getByRole('button', { name: 'Set' }).click()
    await expect
      .poll(async () => seconds((await row.getByTestId('countdown').textContent()) ?? ''))
      .toBeLessThanOrEqual(40)
    const info = await Sandbox.getInfo(sbx.sandboxId, warren().sdk)
    expect(info.endAt.getTime() - Date.now()).toBeLessThanOrEqual(40_000)

    await row.getByRole('button', { name: 'Pause' }).click()
    await expect.poll(() => row.locator('.state').textContent(), { timeout: 30_000 }).toBe('paused')
    expect((await Sandbox.getInfo(sbx.sandboxId, warren().sdk)).state).toBe('paused')
    await row.getByRole('button', { name: 'Resume' }).click()
    await expect
      .poll(() => row.locator('.state').textContent(), { timeout: 30_000 })
      .toBe('running')
    expect((await Sandbox.getInfo(sbx.sandboxId, warren().sdk)).state).toBe('running')
  })

  it("creates a key on the team's keys pane, shows it once, and revokes it", async () => {
    const page = await open()
    await signIn(page, warren().apiKey)
    await page.getByRole('button', { name: 'API keys' }).click()
    await page.getByPlaceholder('name of the new key').fill('from-the-page')
    await page.getByRole('button', { name: 'Create key' }).click()
    const shown = (await page.getByTestId('new-key').locator('code').textContent()) ?? ''
    expect(shown).toMatch(/^e2b_[0-9a-f]{40}$/)
    expect((await api(warren(), 'GET', '/me', { key: shown })).status).toBe(200)

    const row = page.locator('tr[data-key-id]', { hasText: 'from-the-page' })
    await row.waitFor()
    expect(await row.textContent()).not.toContain(shown)
    await row.getByRole('button', { name: 'Revoke' }).click()
    await row.getByRole('button', { name: 'Revoke?' }).click()
    await expect.poll(() => row.textContent()).toContain('revoked')
    expect((await api(warren(), 'GET', '/me', { key: shown })).status).toBe(401)

    // Templates: the built-in one at least, with its status.
    await page.getByRole('button', { name: 'Templates' }).click()
    await expect
      .poll(() => page.locator('tr[data-template-id="base"]').textContent())
      .toContain('ready')
  })

  it('shows nodes to an admin key only; the server refuses a team key regardless', async () => {
    const admin = await open()
    await signIn(admin, warren().apiKey)
    await admin.getByRole('button', { name: 'Nodes' }).click()
    await admin.locator('tr[data-node-id]').first().waitFor()
    expect(await admin.locator('tr[data-node-id]').first().textContent()).toContain('healthy')
    await admin.getByRole('button', { name: 'Teams' }).click()
    await expect
      .poll(() => admin.locator('tr[data-team="default"]').textContent())
      .toContain('/ 100')

    const made = await api(warren(), 'POST', '/api-keys', { json: { name: 'browser-test' } })
    expect(made.status).toBe(201)
    const teamKey = (made.body as { key: string }).key
    await admin.close()
    const page = await open()
    await signIn(page, teamKey)
    await expect.poll(() => page.getByTestId('team').textContent()).toContain('default')
    expect(await page.getByRole('button', { name: 'Nodes' }).count()).toBe(0)
    expect(await page.getByRole('button', { name: 'Teams' }).count()).toBe(0)
    const status = await page.evaluate(
      async (key) => (await fetch('/admin/nodes', { headers: { 'x-api-key': key } })).status,
      teamKey,
    )
    expect(status).toBe(403)
  })

  it("never puts the key in a URL or in Warren's log lines", () => {
    expect(requested.length).toBeGreaterThan(0)
    for (const url of requested) expect(url).not.toContain(warren().apiKey)
    // (The file also holds the banner, which prints the first key on purpose.)
    const logLines = readFileSync(warren().logPath, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
    expect(logLines.length).toBeGreaterThan(0)
    for (const line of logLines) expect(line).not.toContain(warren().apiKey)
  })
})
