import { useState } from 'preact/hooks'
import type { Api, ListedSandbox, Me } from '../data/api.js'
import { countdown, time } from '../data/format.js'
import { type Live, useLive, useNow } from '../data/live.js'
import { ActionButton, ErrorLine } from './common.js'
import { SandboxDetailPanel } from './sandbox-detail.js'

export function SandboxesPane(props: { api: Api; live: Live; me: Me }) {
  const { api, live } = props
  const { data, error } = useLive(live, 'sandboxes', api.sandboxes)
  const now = useNow()
  const [selected, setSelected] = useState<string | undefined>()
  const act = async (fn: () => Promise<void>) => {
    await fn()
    live.invalidate('sandboxes')
    live.invalidate('sandbox')
  }
  const rows = data ?? []
  const running = rows.filter((s) => s.state === 'running').length
  return (
    <section>
      <h2>
        Sandboxes{' '}
        <span class="count" data-testid="sandbox-count">
          {running} running · {rows.length - running} paused · limit {props.me.team.maxConcurrent}
        </span>
      </h2>
      <ErrorLine error={error} />
      {data && rows.length === 0 && <p class="empty">No sandboxes. Create one with the SDK.</p>}
      {rows.length > 0 && (
        <table class="sandboxes">
          <thead>
            <tr>
              <th>Sandbox</th>
              <th>State</th>
              <th>Template</th>
              <th>Node</th>
              <th>Created</th>
              <th>Ends in</th>
              <th>Metadata</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {rows.map((s) => (
              <Row
                key={s.sandboxID}
                s={s}
                now={now}
                selected={s.sandboxID === selected}
                onSelect={() => setSelected(s.sandboxID === selected ? undefined : s.sandboxID)}
                api={api}
                act={act}
              />
            ))}
          </tbody>
        </table>
      )}
      {selected && rows.some((s) => s.sandboxID === selected) && (
        <SandboxDetailPanel api={api} live={live} sandboxId={selected} act={act} />
      )}
    </section>
  )
}

function Row(props: {
  s: ListedSandbox
  now: number
  selected: boolean
  onSelect: () => void
  api: Api
  act: (fn: () => Promise<void>) => Promise<void>
}) {
  const { s, api, act } = props
  const left = Date.parse(s.endAt) - props.now
  return (
    <tr data-sandbox-id={s.sandboxID} class={props.selected ? 'selected' : ''}>
      <td class="mono">
        <button type="button" class="link" title="details" onClick={props.onSelect}>
          {s.sandboxID}
        </button>
      </td>
      <td>
        <span class={`state ${s.state}`}>{s.state}</span>
      </td>
      <td>{s.templateID}</td>
      <td class="mono">{s.clientID}</td>
      <td>{time(s.startedAt)}</td>
      {/* A paused sandbox's lease is not running down. */}
      <td
        class={s.state === 'running' && left < 60_000 ? 'countdown soon' : 'countdown'}
        data-testid="countdown"
      >
        {s.state === 'paused' ? '–' : countdown(left)}
      </td>
      <td class="meta">
        {Object.entries(s.metadata).map(([k, v]) => (
          <span key={k} class="tag">
            {k}={v}
          </span>
        ))}
      </td>
      <td class="actions">
        {s.state === 'running' ? (
          <ActionButton label="Pause" run={() => act(() => api.pause(s.sandboxID))} />
        ) : (
          <ActionButton label="Resume" run={() => act(() => api.resume(s.sandboxID))} />
        )}
        <TimeoutButton onSet={(t) => act(() => api.setTimeout(s.sandboxID, t))} />
        <ActionButton
          label="Kill"
          danger
          confirm="Kill?"
          run={() => act(() => api.kill(s.sandboxID))}
        />
      </td>
    </tr>
  )
}

function TimeoutButton(props: { onSet: (seconds: number) => Promise<void> }) {
  const [open, setOpen] = useState(false)
  const [value, setValue] = useState('300')
  if (!open)
    return (
      <button type="button" onClick={() => setOpen(true)}>
        Timeout
      </button>
    )
  return (
    <form
      class="inline"
      onSubmit={async (e) => {
        e.preventDefault()
        await props.onSet(Number(value)).catch(() => {})
        setOpen(false)
      }}
    >
      <input
        type="number"
        min="0"
        aria-label="timeout in seconds"
        value={value}
        onInput={(e) => setValue(e.currentTarget.value)}
      />
      <button type="submit">Set</button>
    </form>
  )
}
