import { useState } from 'preact/hooks'

export function SignIn(props: { onSignIn: (key: string) => Promise<string | undefined> }) {
  const [key, setKey] = useState('')
  const [error, setError] = useState<string | undefined>()
  const [busy, setBusy] = useState(false)
  return (
    <form
      class="sign-in"
      onSubmit={async (e) => {
        e.preventDefault()
        setBusy(true)
        setError(await props.onSignIn(key.trim()))
        setBusy(false)
      }}
    >
      <h1>Warren</h1>
      <p>Sign in with an API key (e2b_…). It stays in this browser until you sign out.</p>
      <input
        type="password"
        name="apiKey"
        autocomplete="off"
        placeholder="e2b_…"
        value={key}
        onInput={(e) => setKey(e.currentTarget.value)}
      />
      <button type="submit" disabled={busy || !key.trim()}>
        Sign in
      </button>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  )
}
