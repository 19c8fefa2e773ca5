import { describe, expect, it } from 'vitest'
import type { NetworkConfig } from './network-config.js'
import {
  domainAllowed,
  egressAllowsIp,
  ingressAllows,
  maskedHost,
  parseNetworkConfig,
} from './network-rules.js'

describe('parseNetworkConfig: rejects with the bad entry named', () => {
  it.each<{ name: string; cfg: NetworkConfig; iae?: boolean | null; err: RegExp }>([
    {
      name: 'domain in denyOut',
      cfg: { denyOut: ['example.com'] },
      err: /denyOut: 'example.com'.*only allowed in allowOut/,
    },
    {
      name: 'domains without deny-all',
      cfg: { allowOut: ['10.1.0.0/16', 'example.com'] },
      err: /'example.com' require '0.0.0.0\/0'/,
    },
    { name: 'bad CIDR', cfg: { denyOut: ['10.0.0.0/33'] }, err: /denyOut: '10.0.0.0\/33'/ },
    {
      name: 'host bits',
      cfg: { allowOut: ['10.0.0.1/8'] },
      err: /allowOut: '10.0.0.1\/8'.*host bits/,
    },
    {
      name: 'bad domain',
      cfg: { allowOut: ['exa mple.com'], denyOut: ['0.0.0.0/0'] },
      err: /allowOut: 'exa mple.com'/,
    },
    {
      name: 'wildcard in the middle',
      cfg: { allowOut: ['a.*.com'], denyOut: ['0.0.0.0/0'] },
      err: /'a\.\*\.com'/,
    },
    { name: 'IPv6', cfg: { allowOut: ['::1'] }, err: /IPv6/ },
    { name: 'empty entry', cfg: { denyOut: [''] }, err: /non-empty/ },
    {
      name: 'allowIn without deny-all',
      cfg: { allowIn: ['10.0.0.0/8'] },
      err: /'10.0.0.0\/8' require '0.0.0.0\/0' in denyIn/,
    },
    {
      name: 'ingress bad port',
      cfg: { denyIn: ['0.0.0.0/0:70000'] },
      err: /denyIn: '0.0.0.0\/0:70000'/,
    },
    { name: 'ingress reversed range', cfg: { denyIn: ['0.0.0.0/0:90-80'] }, err: /invalid port/ },
    {
      name: 'ingress bad CIDR',
      cfg: { denyIn: ['10.0.0.300:80'] },
      err: /denyIn: '10.0.0.300:80' has an invalid CIDR/,
    },
    { name: 'mask with a path', cfg: { maskRequestHost: 'a.com/x' }, err: /maskRequestHost/ },
    { name: 'mask with a space', cfg: { maskRequestHost: 'a .com' }, err: /maskRequestHost/ },
    { name: "envd's port as HTTPS", cfg: { httpsPorts: [8443, 49983] }, err: /httpsPorts: envd/ },
    { name: 'HTTPS port 0', cfg: { httpsPorts: [0] }, err: /httpsPorts: '0'/ },
  ])('$name', ({ cfg, iae, err }) => {
    expect(() => parseNetworkConfig(cfg, iae ?? null)).toThrow(err)
  })
})

describe('parseNetworkConfig: accepts', () => {
  it('bare IPs as /32, domains lower-cased, wildcards and any', () => {
    const p = parseNetworkConfig({
      allowOut: ['1.2.3.4', 'Example.COM', '*.api.test', '*'],
      denyOut: ['0.0.0.0/0'],
    })
    expect(p.egress.allow).toEqual([{ network: 0x01020304, bits: 32 }])
    expect(p.egress.domains).toEqual({ exact: ['example.com'], suffixes: ['api.test'], any: true })
    expect(p.egress.denyAll).toBe(true)
  })

  it('HTTPS ports, sorted and once each (none by default)', () => {
    expect(parseNetworkConfig({ httpsPorts: [8443, 443, 8443] }).httpsPorts).toEqual([443, 8443])
    expect(parseNetworkConfig({}).httpsPorts).toEqual([])
  })

  it('allow_internet_access: false denies everything but what is allowed', () => {
    const p = parseNetworkConfig({ allowOut: ['x.test'] }, false)
    expect(p.egress.denyAll).toBe(true)
    expect(egressAllowsIp(p.egress, '198.51.100.1')).toBe(false)
  })
})

describe('decisions', () => {
  const p = parseNetworkConfig({
    allowOut: ['198.51.100.10', 'allowed.test', '*.wild.test'],
    denyOut: ['0.0.0.0/0'],
    allowIn: ['203.0.113.0/24:8000-8999', '198.51.100.7'],
    denyIn: ['0.0.0.0/0'],
  })

  it.each([
    ['allowed.test', true],
    ['ALLOWED.test.', true],
    ['sub.allowed.test', false],
    ['wild.test', false],
    ['a.wild.test', true],
    ['a.b.wild.test', true],
    ['evilwild.test', false],
    ['other.test', false],
  ])('domain %s → %s', (name, want) => {
    expect(domainAllowed(p.egress.domains, name)).toBe(want)
  })

  it.each([
    ['198.51.100.10', true],
    ['198.51.100.11', false],
  ])('egress to %s → %s (allow wins over deny)', (ip, want) => {
    expect(egressAllowsIp(p.egress, ip)).toBe(want)
  })

  it.each<[string | undefined, number, boolean]>([
    ['203.0.113.5', 8080, true],
    ['203.0.113.5', 9000, false],
    ['198.51.100.7', 22, true],
    ['198.51.100.8', 22, false],
    ['::ffff:198.51.100.7', 22, true],
    ['2001:db8::1', 8080, false],
    [undefined, 8080, false],
    ['', 8080, false],
  ])('ingress from %s to port %i → %s (fail closed)', (ip, port, want) => {
    expect(ingressAllows(p.ingress, ip, port)).toBe(want)
  })

  it('no deny rule for a port lets anyone in, even an unknown client', () => {
    const q = parseNetworkConfig({ denyIn: ['10.0.0.0/8:22'] })
    expect(ingressAllows(q.ingress, undefined, 8080)).toBe(true)
    expect(ingressAllows(q.ingress, '10.1.2.3', 22)).toBe(false)
  })

  it('masks the host with the port substituted', () => {
    expect(maskedHost('${PORT}-app.internal:8443', 3000)).toBe('3000-app.internal:8443')
  })
})
