// What Warren stores at rest is readable by root only: the database (API
// keys' hashes, envd and traffic tokens, users' env vars), its journal files,
// the first key, and the data directory's listing.
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { Sandbox } from 'e2b'
import { expect, it } from 'vitest'
import { useWarren } from '../helpers/warren-fixture.js'

const warren = useWarren()

it('keeps the database, its journals and the first key from other users', async () => {
  const sbx = await Sandbox.create({ ...warren().sdk, envs: { SECRET: 'x' } })
  try {
    const dir = warren().dataDir
    // Traversable (sandbox roots reach their rootfs through it), never listable or readable.
    expect(statSync(dir).mode & 0o007).toBe(0o001)
    // On PostgreSQL (WARREN_TEST_DATABASE=postgres) the store is not in the data dir.
    const store = warren().databaseUrl.startsWith('sqlite:')
      ? ['warren.db', 'warren.db-wal', 'warren.db-shm']
      : []
    for (const name of [...store, 'first-api-key']) {
      const mode = statSync(join(dir, name)).mode & 0o777
      expect(mode & 0o077, `${name} is ${mode.toString(8)}`).toBe(0)
    }
  } finally {
    await sbx.kill()
  }
})
