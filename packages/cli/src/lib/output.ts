import Table from 'cli-table3'

/** A table for people, or JSON for scripts. */
export function print(rows: Array<Record<string, unknown>>, json: boolean | undefined): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`)
    return
  }
  if (!rows.length) {
    process.stdout.write('(none)\n')
    return
  }
  const head = Object.keys(rows[0]!)
  const table = new Table({ head, style: { head: [], border: [] } })
  for (const row of rows) table.push(head.map((h) => format(row[h])))
  process.stdout.write(`${table.toString()}\n`)
}

export function printOne(row: Record<string, unknown>, json: boolean | undefined): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(row, null, 2)}\n`)
    return
  }
  const table = new Table({ style: { head: [], border: [] } })
  for (const [k, v] of Object.entries(row)) table.push({ [k]: format(v) })
  process.stdout.write(`${table.toString()}\n`)
}

function format(v: unknown): string {
  if (v instanceof Date) return v.toISOString()
  if (v && typeof v === 'object') return JSON.stringify(v)
  return String(v ?? '')
}
