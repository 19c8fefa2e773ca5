import { createRoute, z } from '@hono/zod-openapi'
import {
  checkVolumeMounts,
  clusterNameSchema,
  DEFAULT_ISOLATION,
  isolationSchema,
  networkConfigSchema,
  parseNetworkConfig,
  volumeMountSchema,
  WarrenError,
} from '@warren/shared'
import type { CreateSandboxRequest } from '../../lifecycle/engine.js'
import { clusterExists } from '../../store/clusters.js'
import { resolveTemplateRef } from '../../templates/resolve.js'
import { resolveVolumeMounts } from '../../volumes/manage.js'
import type { App, RouteDeps } from '../deps.js'
import { errorResponses, jsonBody, MAX_TIMEOUT_S, noQuery } from '../params.js'
import { sandboxView } from '../views.js'

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

const stringMap = (what: string, keyRe?: RegExp) =>
  z
    .record(
      z
        .string()
        .min(1)
        .max(256)
        .refine((k) => !keyRe || keyRe.test(k), `invalid ${what} name`),
      z.string().max(16_384),
    )
    .refine((m) => Object.keys(m).length <= 256, `at most 256 ${what} entries`)

const lifecycleSchema = z.strictObject({
  onTimeout: z.enum(['kill', 'pause']).optional(),
  autoResume: z.boolean().optional(),
  keepalive: z.strictObject({ traffic: z.strictObject({ enabled: z.boolean() }) }).optional(),
})

/** One schema for both create paths; `secure` only exists on the v1 path. */
const newSandbox = z
  .strictObject({
    templateID: z.string().min(1),
    timeout: z.number().int().min(1).max(MAX_TIMEOUT_S).optional(),
    metadata: stringMap('metadata').optional(),
    envVars: stringMap('environment variable', ENV_NAME).optional(),
    secure: z.boolean().optional(),
    allow_internet_access: z.boolean().optional(),
    autoPause: z.boolean().optional(),
    autoPauseMemory: z.boolean().optional(),
    autoResume: z.strictObject({ enabled: z.boolean() }).optional(),
    lifecycle: lifecycleSchema.optional(),
    network: networkConfigSchema.optional(),
    // Warren extensions: the template's defaults, overridden per sandbox.
    cpuCount: z.number().int().min(1).max(64).optional(),
    memoryMB: z.number().int().min(64).max(1_048_576).optional(),
    diskSizeMB: z.number().int().min(64).max(1_048_576).optional(),
    volumeMounts: z.array(volumeMountSchema).max(16).optional(),
    // Warren extension: 'runc' (default) or 'gvisor' (a user-space kernel between the sandbox and the host's).
    isolation: isolationSchema.optional(),
    // Warren extension: the cluster whose nodes run it (default: the API's own).
    cluster: clusterNameSchema.optional(),
  })
  .openapi('NewSandbox')

type NewSandbox = z.infer<typeof newSandbox>

const sandboxSchema = z
  .object({
    templateID: z.string(),
    sandboxID: z.string(),
    clientID: z.string(),
    envdVersion: z.string(),
    envdAccessToken: z.string().optional(),
    trafficAccessToken: z.string().nullable(),
    domain: z.string(),
  })
  .openapi('Sandbox')

function route(path: string) {
  return createRoute({
    method: 'post',
    path,
    request: { query: noQuery, body: jsonBody(newSandbox) },
    responses: {
      201: {
        description: 'Sandbox created',
        content: { 'application/json': { schema: sandboxSchema } },
      },
      ...errorResponses,
      429: errorResponses[409],
    },
  })
}

/**
 * Resolves the lifecycle from `lifecycle` and the E2B aliases (`autoPause`,
 * `autoResume.enabled`). An alias at its default (false, which older SDKs
 * always send) never conflicts; two explicit opposite values do.
 */
export function resolveLifecycle(body: NewSandbox): CreateSandboxRequest['lifecycle'] {
  const lc = body.lifecycle ?? {}
  if (body.autoPause === true && lc.onTimeout === 'kill') {
    throw new WarrenError(
      'invalid_argument',
      "autoPause: true conflicts with lifecycle.onTimeout: 'kill'",
    )
  }
  if (body.autoResume?.enabled === true && lc.autoResume === false) {
    throw new WarrenError(
      'invalid_argument',
      'autoResume.enabled: true conflicts with lifecycle.autoResume: false',
    )
  }
  const onTimeout = lc.onTimeout ?? (body.autoPause ? 'pause' : 'kill')
  const autoResume = lc.autoResume ?? body.autoResume?.enabled ?? false
  const autoPauseMemory = body.autoPauseMemory ?? true
  if (body.autoPauseMemory !== undefined && onTimeout !== 'pause') {
    throw new WarrenError(
      'invalid_argument',
      'autoPauseMemory applies only when the sandbox pauses on timeout',
    )
  }
  if (autoResume && !autoPauseMemory) {
    throw new WarrenError(
      'invalid_argument',
      'autoResume cannot be combined with autoPauseMemory: false (a files-only snapshot is resumed explicitly)',
    )
  }
  return {
    onTimeout,
    autoResume,
    autoPauseMemory,
    keepaliveTraffic: lc.keepalive?.traffic.enabled ?? false,
  }
}

/**
 * The cluster a create names, as the store records it: null for the API's
 * own (by default, or by its name), else a remote cluster that exists.
 */
async function resolveCluster(deps: RouteDeps, name: string | undefined): Promise<string | null> {
  if (name === undefined || name === deps.ownCluster) return null
  if (!(await clusterExists(deps.db, name)))
    throw new WarrenError('invalid_argument', `unknown cluster '${name}'`)
  return name
}

export function registerCreate(app: App, deps: RouteDeps): void {
  for (const [path, v2] of [
    ['/sandboxes', false],
    ['/v2/sandboxes', true],
  ] as const) {
    app.openapi(route(path), async (c) => {
      const body = c.req.valid('json')
      if (v2 && body.secure !== undefined) {
        throw new WarrenError(
          'invalid_argument',
          "unsupported field 'secure': v2 sandboxes are always secure",
        )
      }
      const lifecycle = resolveLifecycle(body)
      parseNetworkConfig(body.network ?? {}, body.allow_internet_access ?? null)
      const volumes = await resolveVolumeMounts(
        deps.db,
        c.get('team').id,
        checkVolumeMounts(body.volumeMounts ?? []),
      )
      const team = c.get('team')
      const { isolation: templateIsolation, ...template } = await resolveTemplateRef(
        deps.db,
        team.id,
        body.templateID,
      )
      const sandbox = await deps.engine.create(team, {
        ...template,
        timeoutS: body.timeout ?? deps.defaultTimeoutS,
        metadata: body.metadata ?? {},
        envVars: body.envVars ?? {},
        secure: v2 || body.secure === true,
        lifecycle,
        network: body.network ?? {},
        allowInternetAccess: body.allow_internet_access ?? null,
        resources: {
          cpuCount: body.cpuCount ?? 0,
          memoryMb: body.memoryMB ?? 0,
          diskSizeMb: body.diskSizeMB ?? 0,
        },
        volumeMounts: volumes.mounts,
        nodeId: volumes.nodeId,
        // Named by the create, else required by the team, else the template's.
        isolation:
          body.isolation ?? team.requiredIsolation ?? templateIsolation ?? DEFAULT_ISOLATION,
        cluster: await resolveCluster(deps, body.cluster),
      })
      return c.json(sandboxView(sandbox, deps.view), 201)
    })
  }
}
