import type { OpenAPIHono } from '@hono/zod-openapi'
import type { Logger } from '@warren/shared'
import type { EventStreams } from '../events/streams.js'
import type { ApiEnv } from '../http/auth.js'
import type { Clock } from '../lifecycle/clock.js'
import type { LifecycleEngine } from '../lifecycle/engine.js'
import type { Placement } from '../placement/nodes.js'
import type { Db } from '../store/db.js'
import type { NewTeamLimits } from '../store/teams.js'
import type { BuildRow } from '../store/template-builds.js'
import type { BuildRequest } from '../templates/build-runner.js'
import type { TemplateFiles } from '../templates/files.js'
import type { VolumeContentProxy } from '../volumes/content-proxy.js'
import type { VolumeDeps } from '../volumes/manage.js'
import type { ViewContext } from './views.js'

export interface RouteDeps {
  db: Db
  engine: LifecycleEngine
  placement: Placement
  view: ViewContext
  defaultTimeoutS: number
  clock: Clock
  templates: TemplateDeps
  volumes: VolumeRouteDeps
  /** The API's own cluster's name (WARREN_CLUSTER_NAME): a create naming it stays there. */
  ownCluster: string
  /** The limits a team made through the admin API gets unless told otherwise. */
  teamDefaults: NewTeamLimits
  /** The event stream's store reader and this replica's tail. */
  events: EventStreams
  webhooks: { allowPrivate: boolean }
}

/** What the volume routes need besides the store. */
export interface VolumeRouteDeps extends VolumeDeps {
  /** Size of a volume whose create names none, in MB. */
  defaultSizeMb: number
  content: VolumeContentProxy
}

/** What the template routes need besides the store. */
export interface TemplateDeps {
  files: TemplateFiles
  /** The API's own base URL, where nodes download uploaded files (set once it listens). */
  selfUrl: { current: string | undefined }
  /** Hands a triggered build to its runner (in the background). */
  run: (build: BuildRow, req: BuildRequest) => void
  log: Logger
}

export type App = OpenAPIHono<ApiEnv>
