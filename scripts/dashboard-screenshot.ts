// Makes docs/images/dashboard.png, the README's picture of the dashboard:
// a private `warren up` (its own ports, pool and data dir, as the tests
// start one), several sandboxes made with the e2b SDK (one busy, one
// paused), the dashboard signed in and showing one sandbox's charts, in
// Debian's headless Chromium. Everything it made is killed and removed after.
//
//   npx tsx scripts/dashboard-screenshot.ts [out.png]
import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { Sandbox } from 'e2b'
import { startBrowser } from '../tests/helpers/browser.js'
import { startWarren } from '../tests/helpers/warren-fixture.js'

const out = resolve(process.argv[2] ?? 'docs/images/dashboard.png')

const agents = [
  { agent: 'code-review', user: 'ana', timeoutMs: 55 * 60_000 },
  { agent: 'data-analyst', user: 'li', timeoutMs: 20 * 60_000 },
  { agent: 'test-runner', user: 'ci', timeoutMs: 8 * 60_000 },
  { agent: 'web-scraper', user: 'sam', timeoutMs: 90_000 },
]

const warren = await startWarren()
const browser = await startBrowser().catch(async (err: unknown) => {
  await warren.teardown()
  throw err
})
const made: Sandbox[] = []
try {
  for (const a of agents) {
    made.push(
      await Sandbox.create({
        ...warren.sdk,
        timeoutMs: a.timeoutMs,
        metadata: { agent: a.agent, user: a.user },
      }),
    )
  }
  const [busy, , , paused] = made
  // Something for the CPU and memory charts to show.
  await busy!.commands.run(
    "sh -c 'head -c 96m /dev/zero > /dev/shm/ballast; i=0; while :; do i=$((i+1)); done'",
    { background: true },
  )
  await paused!.pause()

  const page = await browser.newPage()
  await page.goto(`${warren.apiUrl}/dashboard/`)
  await page.getByPlaceholder('e2b_…').fill(warren.apiKey)
  await page.getByRole('button', { name: 'Sign in' }).click()
  const row = page.locator(`tr[data-sandbox-id="${busy!.sandboxId}"]`)
  await row.getByRole('button', { name: busy!.sandboxId }).click()
  // Twenty refreshes' worth of samples.
  await page.waitForTimeout(30_000)
  mkdirSync(dirname(out), { recursive: true })
  await page.screenshot({ path: out })
  console.log(`wrote ${out}`)
} finally {
  for (const s of made) await Sandbox.kill(s.sandboxId, warren.sdk).catch(() => {})
  await browser.close()
  await warren.teardown()
}
