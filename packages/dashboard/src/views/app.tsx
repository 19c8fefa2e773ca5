import { useEffect, useMemo, useState } from 'preact/hooks'
import { ApiError, createApi, type Me } from '../data/api.js'
import { createLive, pollingInvalidator } from '../data/live.js'
import { forgetKey, savedKey, saveKey } from '../data/session.js'
import { KeysPane } from './keys.js'
import { NodesPane } from './nodes.js'
import { SandboxesPane } from './sandboxes.js'
import { SignIn } from './sign-in.js'
import { TeamsPane } from './teams.js'
import { TemplatesPane } from './templates.js'

/** How often the panes refetch while the API has no event stream to push changes. */
const POLL_MS = 1500

type Tab = 'sandboxes' | 'templates' | 'keys' | 'teams' | 'nodes'

export function App() {
  const [session, setSession] = useState<{ key: string; me: Me } | undefined>()
  const [restoring, setRestoring] = useState(true)

  const signIn = async (key: string, restored = false): Promise<string | undefined> => {
    try {
      const me = await createApi(key).me()
      if (!restored) saveKey(key)
      setSession({ key, me })
      return undefined
    } catch (err) {
      return err instanceof ApiError && err.status === 401
        ? 'This API key was refused.'
        : `Could not sign in: ${err instanceof Error ? err.message : String(err)}`
    }
  }

  useEffect(() => {
    const key = savedKey()
    if (!key) return setRestoring(false)
    void signIn(key, true).then((err) => {
      if (err) forgetKey()
      setRestoring(false)
    })
  }, [])

  if (restoring) return null
  if (!session) return <SignIn onSignIn={(key) => signIn(key)} />
  return (
    <Signed
      apiKey={session.key}
      me={session.me}
      onSignOut={() => {
        forgetKey()
        setSession(undefined)
      }}
    />
  )
}

function Signed(props: { apiKey: string; me: Me; onSignOut: () => void }) {
  const api = useMemo(() => createApi(props.apiKey), [props.apiKey])
  const live = useMemo(() => createLive(pollingInvalidator(POLL_MS)), [])
  useEffect(() => () => live.stop(), [live])
  const [tab, setTab] = useState<Tab>('sandboxes')
  const tabs: Array<[Tab, string]> = [
    ['sandboxes', 'Sandboxes'],
    ['templates', 'Templates'],
    ['keys', 'API keys'],
    // Shown to admin keys only; the server refuses the others (403) regardless.
    ...(props.me.admin
      ? ([
          ['teams', 'Teams'],
          ['nodes', 'Nodes'],
        ] as Array<[Tab, string]>)
      : []),
  ]
  return (
    <div class="shell">
      <header>
        <span class="brand">Warren</span>
        <nav>
          {tabs.map(([t, label]) => (
            <button
              type="button"
              key={t}
              class={t === tab ? 'tab active' : 'tab'}
              data-tab={t}
              onClick={() => setTab(t)}
            >
              {label}
            </button>
          ))}
        </nav>
        <span class="who" data-testid="team">
          team <b>{props.me.team.name}</b>
          {props.me.admin ? <span class="badge">admin</span> : null}
        </span>
        <button type="button" class="quiet" onClick={props.onSignOut}>
          Sign out
        </button>
      </header>
      <main>
        {tab === 'sandboxes' && <SandboxesPane api={api} live={live} me={props.me} />}
        {tab === 'templates' && <TemplatesPane api={api} live={live} />}
        {tab === 'keys' && <KeysPane api={api} live={live} me={props.me} />}
        {tab === 'teams' && props.me.admin && <TeamsPane api={api} live={live} />}
        {tab === 'nodes' && props.me.admin && <NodesPane api={api} live={live} />}
      </main>
    </div>
  )
}
