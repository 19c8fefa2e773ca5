// SIGKILL of `warren up` right after kills were answered, their teardowns
// still running in the background: the restart finishes them (each killed
// sandbox's directory was marked before the answer) and adopts none of them,
// neither as running nor as exited; a sandbox that was not killed is adopted.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { api } from '../helpers/api-client.js'
import { converged } from '../helpers/convergence.js'
import { createRaw } from '../helpers/lifecycle.js'
import { useWarren } from '../helpers/warren-fixture.js'

// No warm namespaces: every namespace on the host belongs to a sandbox.
const warren = useWarren({ env: { WARREN_WARM_NETWORK_SLOTS: '0' } })

it('a crash with teardowns pending: the restart finishes them and adopts none', async () => {
  const w = warren()
  const made = await Promise.all(Array.from({ length: 7 }, () => createRaw(w, { timeout: 300 })))
  const [kept, ...killed] = made.map((m) => m.sandboxID) as [string, ...string[]]
  const dir = (id: string) => join(w.dataDir, 'sandboxes', id)

  const answers = await Promise.all(killed.map((id) => api(w, 'DELETE', `/sandboxes/${id}`)))
  expect(answers.map((a) => a.status)).toEqual(killed.map(() => 204))
  await w.stop(true)
  // What the crash interrupted: sandboxes answered as killed, still on disk, marked.
  const pending = killed.filter((id) => existsSync(dir(id)))
  console.log(`teardowns pending at the crash: ${pending.length} of ${killed.length}`)
  expect(pending.length).toBeGreaterThan(0)
  for (const id of pending) expect(existsSync(join(dir(id), 'tearing-down'))).toBe(true)

  await w.start()
  // The start finished them before serving: nothing of them is left, at once.
  expect(killed.filter((id) => existsSync(dir(id)))).toEqual([])
  const live = await converged(w)
  expect(live.map((l) => l.id)).toEqual([kept])
  for (const id of killed) expect((await api(w, 'GET', `/sandboxes/${id}`)).status).toBe(404)

  expect((await api(w, 'DELETE', `/sandboxes/${kept}`)).status).toBe(204)
  expect(await converged(w)).toEqual([])
})
