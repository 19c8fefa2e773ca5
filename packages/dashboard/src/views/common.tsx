import { useState } from 'preact/hooks'

export function ErrorLine(props: { error: string | undefined }) {
  return props.error ? (
    <p class="error" role="alert">
      {props.error}
    </p>
  ) : null
}

/**
 * A button running an API call; with `confirm`, the first click asks and the
 * second acts. A failure shows next to it.
 */
export function ActionButton(props: {
  label: string
  run: () => Promise<void>
  danger?: boolean
  confirm?: string
}) {
  const [asking, setAsking] = useState(false)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | undefined>()
  const click = async () => {
    if (props.confirm && !asking) return setAsking(true)
    setAsking(false)
    setBusy(true)
    setError(undefined)
    try {
      await props.run()
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err))
    } finally {
      setBusy(false)
    }
  }
  return (
    <>
      <button
        type="button"
        class={props.danger ? 'danger' : ''}
        disabled={busy}
        onClick={click}
        onBlur={() => setAsking(false)}
      >
        {asking ? props.confirm : props.label}
      </button>
      {error && (
        <span class="error" role="alert" title={error}>
          {error}
        </span>
      )}
    </>
  )
}
