import { useState } from 'preact/hooks'
import type { Api, TeamSummary } from '../data/api.js'
import { duration } from '../data/format.js'
import { type Live, useLive } from '../data/live.js'
import { ErrorLine } from './common.js'

export function TeamsPane(props: { api: Api; live: Live }) {
  const { api, live } = props
  const { data, error } = useLive(live, 'teams', api.teams)
  const [name, setName] = useState('')
  const [actionError, setActionError] = useState<string | undefined>()
  return (
    <section>
      <h2>Teams</h2>
      <ErrorLine error={error ?? actionError} />
      <form
        class="inline"
        onSubmit={async (e) => {
          e.preventDefault()
          try {
            await api.createTeam(name.trim())
            setName('')
            setActionError(undefined)
            live.invalidate('teams')
          } catch (err) {
            setActionError(err instanceof Error ? err.message : String(err))
          }
        }}
      >
        <input
          placeholder="new team name"
          value={name}
          onInput={(e) => setName(e.currentTarget.value)}
        />
        <button type="submit" disabled={!name.trim()}>
          Create team
        </button>
      </form>
      <table>
        <thead>
          <tr>
            <th>Team</th>
            <th>Sandboxes (now / limit)</th>
            <th>Memory (now / limit)</th>
            <th>Max lifetime</th>
            <th>Max templates</th>
            <th>Isolation</th>
            <th>Keys</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(data ?? []).map((t) => (
            <TeamRow key={t.id} t={t} api={api} live={live} onError={setActionError} />
          ))}
        </tbody>
      </table>
    </section>
  )
}

function TeamRow(props: { t: TeamSummary; api: Api; live: Live; onError: (e: string) => void }) {
  const { t } = props
  const [editing, setEditing] = useState(false)
  const [max, setMax] = useState(String(t.maxConcurrent))
  const [life, setLife] = useState(String(t.maxLifetimeS))
  const [memory, setMemory] = useState(t.maxMemoryMb === null ? '' : String(t.maxMemoryMb))
  const [templates, setTemplates] = useState(t.maxTemplates === null ? '' : String(t.maxTemplates))
  const [isolation, setIsolation] = useState(t.requiredIsolation ?? '')
  return (
    <tr data-team={t.name}>
      <td>{t.name}</td>
      <td>
        {t.activeSandboxes} / {t.maxConcurrent}
      </td>
      <td>
        {t.activeMemoryMb} / {t.maxMemoryMb === null ? '–' : `${t.maxMemoryMb} MB`}
      </td>
      <td>{duration(t.maxLifetimeS)}</td>
      <td>{t.maxTemplates ?? '–'}</td>
      <td>{t.requiredIsolation ?? 'any'}</td>
      <td>{t.activeKeys}</td>
      <td class="actions">
        {editing ? (
          <form
            class="inline"
            onSubmit={async (e) => {
              e.preventDefault()
              try {
                await props.api.setLimits(t.id, {
                  maxConcurrent: Number(max),
                  maxLifetimeS: Number(life),
                  // Empty: no limit.
                  maxMemoryMb: memory.trim() ? Number(memory) : null,
                  maxTemplates: templates.trim() ? Number(templates) : null,
                  requiredIsolation:
                    isolation === 'runc' || isolation === 'gvisor' ? isolation : null,
                })
                setEditing(false)
                props.live.invalidate('teams')
              } catch (err) {
                props.onError(err instanceof Error ? err.message : String(err))
              }
            }}
          >
            <input
              type="number"
              aria-label="max concurrent sandboxes"
              value={max}
              onInput={(e) => setMax(e.currentTarget.value)}
            />
            <input
              type="number"
              aria-label="max lifetime in seconds"
              value={life}
              onInput={(e) => setLife(e.currentTarget.value)}
            />
            <input
              type="number"
              aria-label="max memory in MB (empty: none)"
              value={memory}
              onInput={(e) => setMemory(e.currentTarget.value)}
            />
            <input
              type="number"
              aria-label="max templates (empty: none)"
              value={templates}
              onInput={(e) => setTemplates(e.currentTarget.value)}
            />
            <select
              aria-label="required isolation"
              value={isolation}
              onChange={(e) => setIsolation(e.currentTarget.value)}
            >
              <option value="">any isolation</option>
              <option value="runc">runc required</option>
              <option value="gvisor">gvisor required</option>
            </select>
            <button type="submit">Save</button>
          </form>
        ) : (
          <button type="button" onClick={() => setEditing(true)}>
            Set limits
          </button>
        )}
      </td>
    </tr>
  )
}
