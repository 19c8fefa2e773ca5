import { useState } from 'preact/hooks'
import type { Api, Me } from '../data/api.js'
import { time } from '../data/format.js'
import { type Live, useLive } from '../data/live.js'
import { ActionButton, ErrorLine } from './common.js'

export function KeysPane(props: { api: Api; live: Live; me: Me }) {
  const { api, live } = props
  const { data, error } = useLive(live, 'keys', api.keys)
  const [name, setName] = useState('')
  const [created, setCreated] = useState<string | undefined>()
  const [createError, setCreateError] = useState<string | undefined>()
  return (
    <section>
      <h2>API keys of team {props.me.team.name}</h2>
      <ErrorLine error={error} />
      <form
        class="inline"
        onSubmit={async (e) => {
          e.preventDefault()
          try {
            const k = await api.createKey(name.trim())
            setCreated(k.key)
            setName('')
            setCreateError(undefined)
            live.invalidate('keys')
          } catch (err) {
            setCreateError(err instanceof Error ? err.message : String(err))
          }
        }}
      >
        <input
          placeholder="name of the new key"
          value={name}
          onInput={(e) => setName(e.currentTarget.value)}
        />
        <button type="submit" disabled={!name.trim()}>
          Create key
        </button>
      </form>
      <ErrorLine error={createError} />
      {created && (
        <p class="notice" data-testid="new-key">
          New key, shown this once: <code>{created}</code>
        </p>
      )}
      <table>
        <thead>
          <tr>
            <th>Name</th>
            <th>Key</th>
            <th>Created</th>
            <th>Status</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(data ?? []).map((k) => (
            <tr key={k.id} data-key-id={k.id}>
              <td>
                {k.name}
                {k.admin ? <span class="badge">admin</span> : null}
                {k.id === props.me.keyId ? <span class="badge">this session</span> : null}
              </td>
              <td class="mono">{k.mask}</td>
              <td>{time(k.createdAt)}</td>
              <td>{k.revokedAt ? `revoked ${time(k.revokedAt)}` : 'active'}</td>
              <td class="actions">
                {!k.revokedAt && (
                  <ActionButton
                    label="Revoke"
                    danger
                    confirm="Revoke?"
                    run={async () => {
                      await api.revokeKey(k.id)
                      live.invalidate('keys')
                    }}
                  />
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}
