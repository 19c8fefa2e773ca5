// E2B's snapshots and forks through the pinned SDK: a snapshot is a template
// of a sandbox's files (the sandbox runs on); many sandboxes start from one;
// a fork is a snapshot plus creates. Processes are not copied under runc:
// every new sandbox boots a fresh process tree on the files.
import { Sandbox } from 'e2b'
import { afterAll, describe, expect, it } from 'vitest'
import { api } from '../helpers/api-client.js'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()
const made: string[] = []
const snapshots: string[] = []

afterAll(async () => {
  for (const id of made) await Sandbox.kill(id, warren().sdk).catch(() => {})
  for (const id of snapshots) await Sandbox.deleteSnapshot(id, warren().sdk).catch(() => {})
})

async function create(template?: string): Promise<Sandbox> {
  const opts = { ...warren().sdk, timeoutMs: 120_000 }
  const sbx = template ? await Sandbox.create(template, opts) : await Sandbox.create(opts)
  made.push(sbx.sandboxId)
  return sbx
}

/** A source sandbox with files of its user and root, and a process running. */
async function source(): Promise<Sandbox> {
  const sbx = await create()
  await sbx.files.write('/home/user/notes.txt', 'written before the snapshot\n')
  await sbx.commands.run('sudo mkdir -p /srv/data && echo root-owned | sudo tee /srv/data/x')
  await sbx.commands.run('sleep 3600', { background: true })
  return sbx
}

const sleeping = async (sbx: Sandbox) =>
  (await sbx.commands.run('pgrep -x sleep || true')).stdout.trim() !== ''

describe('snapshots', () => {
  it("makes a template of a running sandbox's files; the sandbox runs on", async () => {
    const src = await source()
    const snap = await src.createSnapshot({ name: `snap-${src.sandboxId.slice(0, 8)}` })
    snapshots.push(snap.snapshotId)
    expect(snap.names).toEqual([`snap-${src.sandboxId.slice(0, 8)}`])
    // The source carries on: same process, and it can still write.
    expect(await sleeping(src)).toBe(true)
    await src.files.write('/home/user/after.txt', 'written after\n')

    // Many sandboxes from one snapshot, by id and by name; each sees its files.
    const [a, b] = await Promise.all([create(snap.snapshotId), create(snap.names[0])])
    for (const s of [a!, b!]) {
      expect(await s.files.read('/home/user/notes.txt')).toBe('written before the snapshot\n')
      expect(await s.files.exists('/home/user/after.txt')).toBe(false)
      expect((await s.commands.run('cat /srv/data/x; stat -c %U /srv/data/x')).stdout).toBe(
        'root-owned\nroot\n',
      )
      // Processes are fresh: the source's sleep did not come along.
      expect(await sleeping(s)).toBe(false)
    }
    // One's changes are its own.
    await a!.files.write('/home/user/notes.txt', 'changed in a\n')
    expect(await b!.files.read('/home/user/notes.txt')).toBe('written before the snapshot\n')
  })

  it('snapshots a paused sandbox too, with memory or files only', async () => {
    const src = await source()
    await src.pause()
    const snap = await Sandbox.createSnapshot(src.sandboxId, warren().sdk)
    snapshots.push(snap.snapshotId)
    const s = await create(snap.snapshotId)
    expect(await s.files.read('/home/user/notes.txt')).toBe('written before the snapshot\n')
    // Still paused, and resumable with its processes.
    const again = await Sandbox.connect(src.sandboxId, warren().sdk)
    expect(await sleeping(again)).toBe(true)
  })

  it('lists by sandbox and by name, pages, and deletes once (then 404)', async () => {
    const src = await create()
    const first = await src.createSnapshot({ name: `first-${src.sandboxId.slice(0, 6)}` })
    const second = await src.createSnapshot()
    snapshots.push(first.snapshotId, second.snapshotId)

    const pager = src.listSnapshots({ limit: 1 })
    const page1 = await pager.nextItems()
    expect(pager.hasNext).toBe(true)
    const page2 = await pager.nextItems()
    expect([...page1, ...page2].map((s) => s.snapshotId)).toEqual([
      second.snapshotId,
      first.snapshotId,
    ])
    const byName = await Sandbox.listSnapshots({
      ...warren().sdk,
      name: first.names[0],
    }).nextItems()
    expect(byName).toEqual([{ snapshotId: first.snapshotId, names: first.names }])

    expect(await Sandbox.deleteSnapshot(first.snapshotId, warren().sdk)).toBe(true)
    expect(await Sandbox.deleteSnapshot(first.snapshotId, warren().sdk)).toBe(false)
    const gone = await api(warren(), 'DELETE', `/templates/${first.snapshotId}`)
    expect(gone.status).toBe(404)
    expect(gone.body).toMatchObject({ code: 404 })
    await expect(create(first.snapshotId)).rejects.toThrow()
  })

  it('refuses a taken name, and an unknown sandbox', async () => {
    const src = await create()
    const name = `taken-${src.sandboxId.slice(0, 6)}`
    snapshots.push((await src.createSnapshot({ name })).snapshotId)
    const dup = await api(warren(), 'POST', `/sandboxes/${src.sandboxId}/snapshots`, {
      json: { name },
    })
    expect(dup.status).toBe(409)
    expect(dup.body).toMatchObject({ code: 409 })
    await expect(Sandbox.createSnapshot('zzzzzzzzzzzzzzzzzzz0', warren().sdk)).rejects.toThrow(
      /not found/i,
    )
  })
})

describe('fork', () => {
  it('makes count sandboxes from the files, fresh processes, the source unchanged', async () => {
    const src = await source()
    const forks = await src.fork({ count: 2, timeoutMs: 60_000 })
    expect(forks).toHaveLength(2)
    for (const f of forks) {
      if (f instanceof Error) throw f
      made.push(f.sandboxId)
      expect(f.sandboxId).not.toBe(src.sandboxId)
      expect(await f.files.read('/home/user/notes.txt')).toBe('written before the snapshot\n')
      expect(await sleeping(f)).toBe(false)
    }
    // The source keeps its id, its process, and is still running.
    expect(await sleeping(src)).toBe(true)
    expect((await src.getInfo()).sandboxId).toBe(src.sandboxId)
    // Each says how it was made.
    const raw = await api(warren(), 'POST', `/sandboxes/${src.sandboxId}/fork`, { json: {} })
    expect(raw.status).toBe(201)
    const [one] = raw.body as Array<{ sandbox: { sandboxID: string; forkedFrom: string } }>
    made.push(one!.sandbox.sandboxID)
    expect(one!.sandbox.forkedFrom).toBe('files')
  })

  it('refuses a count out of range', async () => {
    const src = await create()
    for (const count of [0, 101]) {
      const res = await api(warren(), 'POST', `/sandboxes/${src.sandboxId}/fork`, {
        json: { count },
      })
      expect(res.status).toBe(400)
    }
  })
})
