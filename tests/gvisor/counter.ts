// A counter process that holds its count only in memory and writes it out
// on every tick: a sandbox that continues it from where it was kept its
// processes (a fresh boot would have no counter, or start again at 1).
import type { Sandbox } from 'e2b'
import { expect } from 'vitest'
import { eventually } from '../helpers/api-client.js'

export const COUNTER = [
  'python3 -c "',
  'import os, time',
  'n = 0',
  'while True:',
  '    n += 1',
  "    open('/home/user/count.tmp', 'w').write(str(n))",
  "    os.rename('/home/user/count.tmp', '/home/user/count')",
  '    time.sleep(0.1)',
  '"',
].join('\n')

export async function count(sbx: Sandbox): Promise<number> {
  return Number((await sbx.commands.run('cat /home/user/count')).stdout.trim())
}

/** The counter of `sbx` continues from at least `from` and is still counting. */
export async function continues(sbx: Sandbox, from: number): Promise<void> {
  const first = await count(sbx)
  expect(first).toBeGreaterThanOrEqual(from)
  await eventually('the counter counts on', async () => (await count(sbx)) > first, 15_000)
}
