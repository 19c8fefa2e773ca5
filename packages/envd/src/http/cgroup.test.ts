import { describe, expect, it } from 'vitest'
import {
  countCpuList,
  cpusFromQuota,
  parseKeyValues,
  parseLimit,
  parseProcCgroup,
} from './cgroup.js'

describe('cgroup parsers', () => {
  it('parses key/value files', () => {
    expect(parseKeyValues('file 10\ninactive_file 4\nbad x\n')).toEqual(
      new Map([
        ['file', 10],
        ['inactive_file', 4],
      ]),
    )
  })

  it.each([
    ['max\n', undefined],
    ['9223372036854771712\n', undefined],
    ['1073741824\n', 1073741824],
    [undefined, undefined],
  ])('limit %s → %s', (text, n) => {
    expect(parseLimit(text)).toBe(n)
  })

  it.each([
    [200000, 100000, 2],
    [-1, 100000, undefined],
    [undefined, 100000, undefined],
  ])('quota %s/%s → %s', (q, p, n) => {
    expect(cpusFromQuota(q, p)).toBe(n)
  })

  it.each([
    ['0-3', 4],
    ['0-3,5', 5],
    ['2', 1],
    ['', undefined],
  ])('cpu list %s → %s', (t, n) => {
    expect(countCpuList(t)).toBe(n)
  })

  it('reads /proc/self/cgroup in v1 and v2 forms', () => {
    const m = parseProcCgroup('4:memory:/sandbox\n2:cpu,cpuacct:/sandbox\n0::/\n')
    expect(m.get('memory')).toBe('/sandbox')
    expect(m.get('cpuacct')).toBe('/sandbox')
    expect(m.get('')).toBe('/')
  })
})
