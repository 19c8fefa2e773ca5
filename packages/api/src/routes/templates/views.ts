import type { BuildRow, LogEntryRow } from '../../store/template-builds.js'
import type { TagRow, TemplateRow } from '../../store/templates.js'

const iso = (ms: number) => new Date(ms).toISOString()

/** The status E2B clients know: a requested build not yet started counts as waiting. */
export function publicStatus(b: BuildRow): 'waiting' | 'building' | 'ready' | 'error' {
  return b.status === 'pending' ? 'waiting' : b.status
}

export function logEntryView(e: LogEntryRow) {
  return {
    timestamp: iso(e.at),
    level: e.level,
    message: e.message,
    ...(e.step ? { step: e.step } : {}),
  }
}

export function buildView(b: BuildRow) {
  return {
    buildID: b.id,
    status: publicStatus(b),
    cpuCount: b.cpuCount,
    memoryMB: b.memoryMb,
    diskSizeMB: b.diskSizeMb,
    ...(b.envdVersion ? { envdVersion: b.envdVersion } : {}),
    createdAt: iso(b.createdAt),
    updatedAt: iso(b.updatedAt),
    ...(b.finishedAt ? { finishedAt: iso(b.finishedAt) } : {}),
  }
}

/** E2B's `Template` (list) for a team template and its latest build. */
export function templateView(t: TemplateRow, latest: BuildRow | undefined, builds: number) {
  const current = latest
  return {
    templateID: t.id,
    buildID: t.buildId ?? current?.id ?? '',
    cpuCount: current?.cpuCount ?? 0,
    memoryMB: current?.memoryMb ?? 0,
    diskSizeMB: current?.diskSizeMb ?? 0,
    envdVersion: current?.envdVersion ?? '',
    public: false,
    aliases: t.aliases,
    names: t.aliases,
    createdAt: iso(t.createdAt),
    updatedAt: iso(t.updatedAt),
    createdBy: null,
    lastSpawnedAt: null,
    spawnCount: 0,
    buildCount: builds,
    buildStatus: current ? publicStatus(current) : 'waiting',
  }
}

export function tagView(t: TagRow) {
  return { tag: t.tag, buildID: t.buildId, createdAt: iso(t.createdAt) }
}
