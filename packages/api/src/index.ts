export { type ApiService, createApiService, databaseUrl, type LocalNode } from './service.js'
export { addCluster, listClusters, removeCluster } from './store/clusters.js'
export { openDatabase } from './store/db.js'
export {
  createApiKey,
  ensureDefaultTeam,
  ensureTeam,
  listApiKeys,
  revokeApiKey,
} from './store/teams.js'
