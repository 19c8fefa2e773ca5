import type { Api } from '../data/api.js'
import { type Live, useLive } from '../data/live.js'
import { ErrorLine } from './common.js'

export function NodesPane(props: { api: Api; live: Live }) {
  const { data, error } = useLive(props.live, 'nodes', props.api.nodes)
  return (
    <section>
      <h2>Nodes</h2>
      <ErrorLine error={error} />
      <table>
        <thead>
          <tr>
            <th>Node</th>
            <th>Health</th>
            <th>Schedulable</th>
            <th>vCPUs allocated</th>
            <th>Memory used</th>
            <th>Templates</th>
            <th>Version</th>
          </tr>
        </thead>
        <tbody>
          {(data ?? []).map((n) => {
            const used = n.memoryMbTotal - n.memoryMbFree
            return (
              <tr key={n.nodeId} data-node-id={n.nodeId}>
                <td class="mono">{n.nodeId}</td>
                <td>
                  <span class={`state ${n.health}`}>{n.health}</span>
                </td>
                <td>{n.schedulable}</td>
                <td>
                  {n.cpuAllocated} / {n.cpuCount}
                </td>
                <td>
                  <meter min={0} max={n.memoryMbTotal} value={used} /> {used} / {n.memoryMbTotal} MB
                </td>
                <td>{n.templates.join(', ')}</td>
                <td>{n.version}</td>
              </tr>
            )
          })}
        </tbody>
      </table>
    </section>
  )
}
