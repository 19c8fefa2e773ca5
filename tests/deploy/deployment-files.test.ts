// The deployment files under deploy/ and the configuration the docs describe,
// checked against what Warren reads: every Kubernetes object against the
// Kubernetes API schemas (kubernetes-models), every WARREN_* variable given
// to a component against the variables that component reads, each
// component's whole environment through its own configuration loader, and
// the README's table against every variable there is.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  configVariables,
  loadApiConfig,
  loadOrchestratorConfig,
  loadProxyConfig,
} from '@warren/shared'
import { DockerfileParser } from 'dockerfile-ast'
import { DaemonSet, Deployment } from 'kubernetes-models/apps/v1'
import { Secret, Service } from 'kubernetes-models/v1'
import { describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'

const ROOT = join(import.meta.dirname, '../..')
const DEPLOY = join(ROOT, 'deploy')
type Component = 'api' | 'orchestrator' | 'proxy'
const COMPONENTS: Component[] = ['api', 'orchestrator', 'proxy']

const loaders: Record<Component, (env: NodeJS.ProcessEnv) => unknown> = {
  api: (env) => loadApiConfig({}, env),
  orchestrator: (env) => loadOrchestratorConfig({}, env),
  proxy: (env) => loadProxyConfig({}, env),
}

const models = {
  'v1/Namespace': null,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/DaemonSet': DaemonSet,
} as const

interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string }
  // biome-ignore lint/suspicious/noExplicitAny: checked against the schemas below
  spec?: any
  stringData?: Record<string, string>
  type?: string
}

function manifests(): Array<{ file: string; obj: K8sObject }> {
  const dir = join(DEPLOY, 'k8s')
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((doc) => {
        if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]?.message}`)
        return { file, obj: doc.toJSON() as K8sObject }
      }),
    )
}

function workloads(): Array<{ file: string; obj: K8sObject }> {
  return manifests().filter(({ obj }) => obj.kind === 'Deployment' || obj.kind === 'DaemonSet')
}

interface EnvVar {
  name: string
  value?: string
  valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } }
}

/** A value for each variable as the cluster would give it (secrets from their manifest). */
function resolveEnv(env: EnvVar[]): NodeJS.ProcessEnv {
  const secrets = new Map(
    manifests()
      .filter(({ obj }) => obj.kind === 'Secret')
      .map(({ obj }) => [obj.metadata.name, obj.stringData ?? {}]),
  )
  const fields: Record<string, string> = { 'spec.nodeName': 'node-1', 'status.hostIP': '10.0.0.11' }
  return Object.fromEntries(
    env.map((e) => {
      const ref = e.valueFrom?.secretKeyRef
      if (ref) {
        const value = secrets.get(ref.name)?.[ref.key]
        if (value === undefined)
          throw new Error(`${e.name}: no key ${ref.key} in secret ${ref.name}`)
        return [e.name, value]
      }
      const field = e.valueFrom?.fieldRef?.fieldPath
      if (field) {
        if (!(field in fields)) throw new Error(`${e.name}: unexpected field ${field}`)
        return [e.name, fields[field]]
      }
      return [e.name, e.value]
    }),
  )
}

function expectKnown(component: Component, names: string[], where: string): void {
  const known = new Set<string>(configVariables[component])
  expect(
    names.filter((n) => !known.has(n)),
    `${where}: variables ${component} does not read`,
  ).toEqual([])
}

describe('Kubernetes manifests (deploy/k8s)', () => {
  it('are valid objects of the Kubernetes API, all in the warren namespace', () => {
    const all = manifests()
    expect(all.length).toBeGreaterThan(0)
    for (const { file, obj } of all) {
      const key = `${obj.apiVersion}/${obj.kind}` as keyof typeof models
      expect(Object.keys(models), `${file}: ${key}`).toContain(key)
      const Model = models[key]
      if (Model)
        expect(() => new Model(obj as never).validate(), `${file} ${obj.kind}`).not.toThrow()
      if (obj.kind !== 'Namespace') expect(obj.metadata.namespace, file).toBe('warren')
    }
  })

  it('run an API Deployment, an orchestrator DaemonSet and an edge proxy Deployment', () => {
    const byComponent = Object.fromEntries(
      workloads().map(({ obj }) => [obj.spec.template.spec.containers[0].args[0], obj.kind]),
    )
    expect(byComponent).toEqual({
      api: 'Deployment',
      orchestrator: 'DaemonSet',
      proxy: 'Deployment',
    })
  })

  it('give each component only variables it reads, and values its configuration accepts', () => {
    for (const { file, obj } of workloads()) {
      const pod = obj.spec.template.spec
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        const env = c.env as EnvVar[]
        const command = c.args[0] as string
        const component: Component = COMPONENTS.includes(command as Component)
          ? (command as Component)
          : 'orchestrator' // `warren template build base` builds on the node's data dir
        expectKnown(
          component,
          env.map((e) => e.name),
          `${file} ${c.name}`,
        )
        expect(() => loaders[component](resolveEnv(env)), `${file} ${c.name}`).not.toThrow()
      }
    }
  })

  it('select their own pods, and Services reach ports the containers name', () => {
    const all = manifests()
    for (const { file, obj } of workloads()) {
      expect(obj.spec.template.metadata.labels, file).toMatchObject(obj.spec.selector.matchLabels)
    }
    for (const { file, obj } of all.filter(({ obj }) => obj.kind === 'Service')) {
      if (obj.spec.type === 'ExternalName') continue
      const targets = workloads().filter(({ obj: w }) =>
        Object.entries(obj.spec.selector).every(
          ([k, v]) => w.spec.template.metadata.labels[k] === v,
        ),
      )
      expect(targets.length, `${file} ${obj.metadata.name} selects no workload`).toBe(1)
      const ports = targets[0]?.obj.spec.template.spec.containers.flatMap(
        (c: { ports: Array<{ name: string }> }) => c.ports.map((p) => p.name),
      )
      for (const p of obj.spec.ports)
        expect(ports, `${file} ${obj.metadata.name}`).toContain(p.targetPort)
    }
  })

  it('point the edge at the internal API Service, and the API at the database Service', () => {
    const env = (component: string) =>
      resolveEnv(
        workloads().find(({ obj }) => obj.spec.template.spec.containers[0].args[0] === component)
          ?.obj.spec.template.spec.containers[0].env,
      )
    expect(env('proxy').WARREN_API_INTERNAL_URL).toBe('http://warren-api-internal.warren.svc:5009')
    expect(env('api').WARREN_DATABASE).toMatch(/^postgres:\/\/[^@]+@postgres\.warren\.svc:5432\//)
  })
})

/** `Key=value` lines of a unit or environment file, comments and sections left out. */
function keyValues(text: string): Array<[string, string]> {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('['))
    .map((l) => {
      const at = l.indexOf('=')
      if (at < 1) throw new Error(`not key=value: ${l}`)
      return [l.slice(0, at), l.slice(at + 1)]
    })
}

describe('systemd units (deploy/systemd)', () => {
  it.each(COMPONENTS)(
    'warren-%s.service runs its component with an environment it accepts',
    (component) => {
      const dir = join(DEPLOY, 'systemd')
      const unit = new Map(
        keyValues(readFileSync(join(dir, `warren-${component}.service`), 'utf8')),
      )
      expect(unit.get('ExecStart')).toBe(
        `/usr/bin/node /opt/warren/packages/cli/dist/main.js ${component}`,
      )
      expect(unit.get('EnvironmentFile')).toBe(`/etc/warren/${component}.env`)
      const env = keyValues(readFileSync(join(dir, `${component}.env`), 'utf8'))
      expectKnown(
        component,
        env.map(([k]) => k),
        `${component}.env`,
      )
      expect(() => loaders[component](Object.fromEntries(env))).not.toThrow()
    },
  )
})

describe('the image (deploy/Dockerfile)', () => {
  it('builds the checkout and runs the CLI', () => {
    const df = DockerfileParser.parse(readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8'))
    const ins = df
      .getInstructions()
      .map((i): [string, string] => [i.getKeyword(), i.getArgumentsContent() ?? ''])
    expect(ins[0]?.[0]).toBe('FROM')
    expect(ins.some(([k, a]) => k === 'RUN' && a.includes('npm run build'))).toBe(true)
    expect(ins.find(([k]) => k === 'ENTRYPOINT')?.[1]).toContain(
      '/opt/warren/packages/cli/dist/main.js',
    )
  })
})

describe('the documented configuration', () => {
  const every = new Set<string>(Object.values(configVariables).flat())
  const mentioned = (text: string) => new Set(text.match(/\bWARREN_[A-Z0-9_]+\b/g) ?? [])

  it("the README's table lists every variable Warren reads", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const table = readme.slice(
      readme.indexOf('## Configuration'),
      readme.indexOf('## Architecture'),
    )
    const listed = mentioned(table)
    expect([...every].filter((v) => !listed.has(v))).toEqual([])
  })

  it('the docs and deployment files name no variable Warren does not read', () => {
    const texts = [
      join(ROOT, 'README.md'),
      ...readdirSync(join(ROOT, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => join(ROOT, 'docs', f)),
      ...['k8s', 'systemd'].flatMap((d) =>
        readdirSync(join(DEPLOY, d)).map((f) => join(DEPLOY, d, f)),
      ),
    ]
    for (const file of texts) {
      const unknown = [...mentioned(readFileSync(file, 'utf8'))].filter(
        // The test suite's own switches are not configuration.
        (v) => !every.has(v) && !v.startsWith('WARREN_TEST_'),
      )
      expect(unknown, file).toEqual([])
    }
  })
})
