import { databaseUrl, openDatabase } from '@warren/api'
import { type ApiConfig, loadApiConfig } from '@warren/shared'

/** Runs `fn` on the API's store (WARREN_DATABASE_URL or the local SQLite): no running API needed. */
export async function withDb<T>(
  fn: (db: Awaited<ReturnType<typeof openDatabase>>, cfg: ApiConfig) => Promise<T>,
): Promise<T> {
  const cfg = loadApiConfig()
  const db = await openDatabase(databaseUrl(cfg))
  try {
    return await fn(db, cfg)
  } finally {
    await db.destroy()
  }
}
