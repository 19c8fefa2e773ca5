import { useState } from 'preact/hooks'
import type { Api } from '../data/api.js'
import { time } from '../data/format.js'
import { type Live, useLive } from '../data/live.js'
import { ErrorLine } from './common.js'

export function TemplatesPane(props: { api: Api; live: Live }) {
  const { api, live } = props
  const { data, error } = useLive(live, 'templates', api.templates)
  const [open, setOpen] = useState<string | undefined>()
  return (
    <section>
      <h2>Templates</h2>
      <ErrorLine error={error} />
      <table>
        <thead>
          <tr>
            <th>Template</th>
            <th>Names</th>
            <th>vCPUs / memory</th>
            <th>Status</th>
            <th>Builds</th>
            <th>Updated</th>
          </tr>
        </thead>
        <tbody>
          {(data ?? []).map((t) => (
            <>
              <tr key={t.templateID} data-template-id={t.templateID}>
                <td class="mono">
                  <button
                    type="button"
                    class="link"
                    title="builds"
                    onClick={() => setOpen(open === t.templateID ? undefined : t.templateID)}
                  >
                    {t.templateID}
                  </button>
                </td>
                <td>{t.aliases.join(', ')}</td>
                <td>
                  {t.cpuCount} / {t.memoryMB} MB
                </td>
                <td>
                  <span class={`state ${t.buildStatus}`}>{t.buildStatus}</span>
                  {t.public ? <span class="badge">built-in</span> : null}
                </td>
                <td>{t.buildCount}</td>
                <td>{time(t.updatedAt)}</td>
              </tr>
              {open === t.templateID && !t.public && (
                <tr key={`${t.templateID}-builds`} class="sub">
                  <td colSpan={6}>
                    <Builds api={api} live={live} templateId={t.templateID} />
                  </td>
                </tr>
              )}
            </>
          ))}
        </tbody>
      </table>
    </section>
  )
}

function Builds(props: { api: Api; live: Live; templateId: string }) {
  const { data, error } = useLive(
    props.live,
    'templates',
    () => props.api.template(props.templateId),
    [props.templateId],
  )
  return (
    <div>
      <ErrorLine error={error} />
      <ul class="builds">
        {(data?.builds ?? []).map((b) => (
          <li key={b.buildID}>
            <span class="mono">{b.buildID}</span>{' '}
            <span class={`state ${b.status}`}>{b.status}</span> {time(b.createdAt)}
            {b.finishedAt ? ` → ${time(b.finishedAt)}` : ''}
          </li>
        ))}
      </ul>
    </div>
  )
}
