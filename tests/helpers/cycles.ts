// Create/kill cycles against a Warren, a few at a time: the flood test and
// the soak script share them.
import { api } from './api-client.js'
import type { WarrenFixture } from './warren-fixture.js'

/** Runs `n` create → command → kill cycles, `parallel` at once; throws on the first failure. */
export async function createKillCycles(w: WarrenFixture, n: number, parallel = 4): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < n) {
      next++
      const created = await api(w, 'POST', '/v2/sandboxes', {
        json: { templateID: 'base', timeout: 120 },
      })
      if (created.status !== 201) throw new Error(`create: ${created.status} ${created.text}`)
      const id = (created.body as { sandboxID: string }).sandboxID
      const killed = await api(w, 'DELETE', `/sandboxes/${id}`)
      if (killed.status !== 204) throw new Error(`kill ${id}: ${killed.status} ${killed.text}`)
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker))
}
