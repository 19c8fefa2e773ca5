// SIGKILL of `warren up` in the middle of creates, pauses, resumes, kills and
// network updates, then a restart: the API and the host converge — every
// sandbox the API calls live has exactly its host objects and answers, and
// nothing else of the node is left (no namespace, veth, container, cgroup,
// mount, disk or record without a sandbox, none missing for one). What a
// caller was told before the crash holds after it.
import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { api, sleep } from '../helpers/api-client.js'
import { converged } from '../helpers/convergence.js'
import { connect, createRaw, pause } from '../helpers/lifecycle.js'
import { sandboxLink } from '../helpers/node-fixture.js'
import { useWarren } from '../helpers/warren-fixture.js'

// No warm namespaces: every namespace on the host belongs to a sandbox.
const warren = useWarren({ env: { WARREN_WARM_NETWORK_SLOTS: '0' } })

/** Fires `ops` at once, SIGKILLs Warren after `delayMs`, restarts it; returns what answered. */
async function crashDuring<T>(
  ops: Array<() => Promise<T>>,
  delayMs: number,
): Promise<Array<PromiseSettledResult<T>>> {
  const inflight = Promise.allSettled(ops.map((op) => op()))
  await sleep(delayMs)
  await warren().stop(true)
  const settled = await inflight
  // How far the operations got when Warren died (answered / cut off).
  const done = settled.filter((r) => r.status === 'fulfilled').length
  console.log(`crash after ${delayMs} ms: ${done} answered, ${settled.length - done} cut off`)
  await warren().start()
  return settled
}

async function sandboxes(n: number): Promise<string[]> {
  const made = await Promise.all(
    Array.from({ length: n }, () => createRaw(warren(), { timeout: 300 })),
  )
  return made.map((m) => m.sandboxID)
}

const answered = <T>(r: PromiseSettledResult<T>): T | undefined =>
  r.status === 'fulfilled' ? r.value : undefined

describe('a crash in the middle of', () => {
  for (const delay of [60, 250]) {
    it(`creates (killed after ${delay} ms)`, async () => {
      const results = await crashDuring(
        Array.from(
          { length: 5 },
          () => () =>
            api(warren(), 'POST', '/v2/sandboxes', { json: { templateID: 'base', timeout: 300 } }),
        ),
        delay,
      )
      const live = await converged(warren())
      // A create that answered 201 before the crash is there after it.
      for (const r of results.map(answered)) {
        if (r?.status === 201) {
          const id = (r.body as { sandboxID: string }).sandboxID
          expect(live.map((l) => l.id)).toContain(id)
        }
      }
      for (const s of live) await api(warren(), 'DELETE', `/sandboxes/${s.id}`)
      await converged(warren())
    })

    it(`pauses (killed after ${delay} ms)`, async () => {
      const ids = await sandboxes(4)
      await crashDuring(
        ids.map((id, i) => () => pause(warren(), id, i % 2 === 0)),
        delay,
      )
      const live = await converged(warren())
      expect(live.map((l) => l.id).sort()).toEqual([...ids].sort())
      // Whatever state each settled in, it works from there.
      for (const s of live) {
        if (s.state === 'paused') await connect(warren(), s.id, { timeout: 300 })
      }
      await converged(warren())
      for (const id of ids) await api(warren(), 'DELETE', `/sandboxes/${id}`)
      await converged(warren())
    })

    it(`resumes (killed after ${delay} ms)`, async () => {
      const ids = await sandboxes(4)
      for (const [i, id] of ids.entries()) expect(await pause(warren(), id, i % 2 === 0)).toBe(204)
      await crashDuring(
        ids.map(
          (id) => () =>
            api(warren(), 'POST', `/v2/sandboxes/${id}/connect`, { json: { timeout: 300 } }),
        ),
        delay,
      )
      const live = await converged(warren())
      expect(live.map((l) => l.id).sort()).toEqual([...ids].sort())
      for (const s of live) {
        if (s.state === 'paused') await connect(warren(), s.id, { timeout: 300 })
      }
      await converged(warren())
      for (const id of ids) await api(warren(), 'DELETE', `/sandboxes/${id}`)
      await converged(warren())
    })

    it(`kills (killed after ${delay} ms)`, async () => {
      const ids = await sandboxes(4)
      const results = await crashDuring(
        ids.map((id) => () => api(warren(), 'DELETE', `/sandboxes/${id}`)),
        delay,
      )
      const live = await converged(warren())
      // A kill that answered 204 stays done; the others either happened or not.
      for (const [i, r] of results.entries()) {
        if (answered(r)?.status === 204) expect(live.map((l) => l.id)).not.toContain(ids[i])
      }
      for (const s of live) await api(warren(), 'DELETE', `/sandboxes/${s.id}`)
      await converged(warren())
    })

    it(`network updates (killed after ${delay} ms)`, async () => {
      const [id] = await sandboxes(1)
      const bodies = ['198.51.100.1', '198.51.100.2', '198.51.100.3'].map((ip) => ({
        denyOut: [ip],
      }))
      await crashDuring(
        bodies.map((json) => () => api(warren(), 'PUT', `/sandboxes/${id}/network`, { json })),
        delay,
      )
      await converged(warren())
      // The node enforces what the API says (a half-done update is repaired).
      const stored = (await api(warren(), 'GET', `/sandboxes/${id}`)).body as {
        network: { denyOut?: string[] }
      }
      const rules = nftRules(id!)
      for (const ip of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) {
        expect(rules.includes(ip), `${ip} in the rules`).toBe(
          stored.network.denyOut?.includes(ip) ?? false,
        )
      }
      await api(warren(), 'DELETE', `/sandboxes/${id!}`)
      await converged(warren())
    })
  }
})

/** The nftables ruleset inside a sandbox's namespace. */
function nftRules(sandboxId: string): string {
  return execFileSync(
    'ip',
    [
      'netns',
      'exec',
      sandboxLink(warren(), sandboxId).netns,
      'nft',
      'list',
      'table',
      'inet',
      'sandbox',
    ],
    { encoding: 'utf8' },
  )
}
