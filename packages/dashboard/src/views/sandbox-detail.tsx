import { useEffect, useState } from 'preact/hooks'
import type { Api } from '../data/api.js'
import { mib } from '../data/format.js'
import { type Live, useLive } from '../data/live.js'
import { Sparkline } from './chart.js'
import { ErrorLine } from './common.js'

/** How many metric samples the charts keep (one per refresh). */
const HISTORY = 60

export function SandboxDetailPanel(props: {
  api: Api
  live: Live
  sandboxId: string
  act: (fn: () => Promise<void>) => Promise<void>
}) {
  const { api, live, sandboxId } = props
  const detail = useLive(live, 'sandbox', () => api.sandbox(sandboxId), [sandboxId])
  const metrics = useLive(live, 'sandbox', () => api.metrics(sandboxId), [sandboxId])
  const logs = useLive(live, 'sandbox', () => api.logs(sandboxId), [sandboxId])
  // The metrics route answers the current sample: the history is this page's.
  const [history, setHistory] = useState<
    Array<{ t: number; cpu: number; memMb: number; memTotalMb: number }>
  >([])
  useEffect(() => setHistory([]), [sandboxId])
  useEffect(() => {
    const m = metrics.data?.at(-1)
    if (!m) return
    setHistory((h) =>
      h.at(-1)?.t === m.timestampUnix
        ? h
        : [
            ...h.slice(-(HISTORY - 1)),
            {
              t: m.timestampUnix,
              cpu: m.cpuUsedPct,
              memMb: m.memUsed / 2 ** 20,
              memTotalMb: m.memTotal / 2 ** 20,
            },
          ],
    )
  }, [metrics.data])
  const d = detail.data
  return (
    <section class="detail" data-testid="sandbox-detail">
      <h3 class="mono">{sandboxId}</h3>
      <ErrorLine error={detail.error} />
      <div class="charts">
        <Sparkline label="CPU" unit="%" values={history.map((x) => x.cpu)} max={100} />
        <Sparkline
          label="Memory"
          unit="MiB"
          values={history.map((x) => x.memMb)}
          max={history.at(-1)?.memTotalMb ?? d?.memoryMB ?? 512}
        />
      </div>
      {d && (
        <dl class="facts">
          <dt>vCPUs / memory</dt>
          <dd>
            {d.cpuCount} / {d.memoryMB} MB
            {metrics.data?.at(-1) && ` (using ${mib(metrics.data.at(-1)!.memUsed)})`}
          </dd>
          <dt>On timeout</dt>
          <dd>
            {d.lifecycle.onTimeout}
            {d.lifecycle.autoResume ? ', resumes on traffic' : ''}
          </dd>
          <dt>Internet</dt>
          <dd>{d.allowInternetAccess === false ? 'denied' : 'allowed'}</dd>
          <dt>Network rules</dt>
          <dd>
            <code>{JSON.stringify(d.network)}</code>
          </dd>
        </dl>
      )}
      <h4>Logs</h4>
      <pre class="logs" data-testid="logs">
        {(logs.data?.logs ?? [])
          .slice()
          .reverse()
          .map((l) => `${l.timestamp} ${l.level.padEnd(5)} ${l.message}`)
          .join('\n') || 'no log lines'}
      </pre>
    </section>
  )
}
