import type { OpenAPIHono } from '@hono/zod-openapi'
import type { ApiEnv } from '../http/auth.js'
import type { Clock } from '../lifecycle/clock.js'
import type { LifecycleEngine } from '../lifecycle/engine.js'
import type { Placement } from '../placement/nodes.js'
import type { Db } from '../store/db.js'
import type { ViewContext } from './views.js'

export interface RouteDeps {
  db: Db
  engine: LifecycleEngine
  placement: Placement
  view: ViewContext
  defaultTimeoutS: number
  clock: Clock
}

export type App = OpenAPIHono<ApiEnv>
