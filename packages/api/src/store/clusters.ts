import { createHash, timingSafeEqual } from 'node:crypto'
import { newClusterSecret, WarrenError } from '@warren/shared'
import type { Db } from './db.js'

/** A remote cluster as `warren cluster list` shows it. */
export interface ClusterInfo {
  name: string
  createdAt: number
}

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex')
}

/**
 * A new remote cluster and its secret, which is returned once and kept
 * only as its sha256: whoever holds it speaks for that cluster's nodes and
 * edge proxies, and for no other cluster.
 */
export async function addCluster(
  db: Db,
  name: string,
  now = Date.now(),
): Promise<{ secret: string }> {
  const secret = newClusterSecret()
  const inserted = await db
    .insertInto('clusters')
    .values({ name, secret_hash: hashSecret(secret), created_at: now })
    .onConflict((oc) => oc.column('name').doNothing())
    .executeTakeFirst()
  if (!inserted.numInsertedOrUpdatedRows)
    throw new WarrenError('already_exists', `cluster '${name}' exists`)
  return { secret }
}

export async function listClusters(db: Db): Promise<ClusterInfo[]> {
  const rows = await db
    .selectFrom('clusters')
    .select(['name', 'created_at'])
    .orderBy('name')
    .execute()
  return rows.map((r) => ({ name: r.name, createdAt: Number(r.created_at) }))
}

export async function clusterExists(db: Db, name: string): Promise<boolean> {
  return !!(await db
    .selectFrom('clusters')
    .select('name')
    .where('name', '=', name)
    .executeTakeFirst())
}

/**
 * Forgets a remote cluster: its secret opens nothing any more. Refused
 * while sandboxes of it are alive (they would have no edge and no node the
 * API may call).
 */
export async function removeCluster(db: Db, name: string): Promise<void> {
  const live = await db
    .selectFrom('sandboxes')
    .select('id')
    .where('cluster', '=', name)
    .where('state', '!=', 'killed')
    .executeTakeFirst()
  if (live)
    throw new WarrenError(
      'conflict',
      `cluster '${name}' still has sandboxes (${live.id}, …): kill them first`,
    )
  const res = await db.deleteFrom('clusters').where('name', '=', name).executeTakeFirst()
  if (!res.numDeletedRows) throw new WarrenError('not_found', `no cluster '${name}'`)
}

/**
 * The remote cluster a presented secret belongs to, if any. Looked up by
 * hash and compared again in constant time, as API keys are.
 */
export async function clusterOfSecret(db: Db, presented: string): Promise<string | undefined> {
  const hash = hashSecret(presented)
  const row = await db
    .selectFrom('clusters')
    .select(['name', 'secret_hash'])
    .where('secret_hash', '=', hash)
    .executeTakeFirst()
  if (!row || !timingSafeEqual(Buffer.from(row.secret_hash), Buffer.from(hash))) return undefined
  return row.name
}
