// Connectivity checks run inside a sandbox, many at once: HTTP(S) with curl
// (trusting the test CA), name resolution, UDP and TCP echo. Each check
// reports one outcome word, so a test states a whole matrix in one toEqual.
import type { Sandbox } from 'e2b'
import type { Internet } from '../helpers/internet.js'
import { underGvisor } from '../helpers/test-isolation.js'
import { sh } from '../runtime/helpers.js'

/**
 * Outcomes:
 * - `ok:<name>`   a fake host answered; <name> owns the address that served
 * - `http:<code>` an HTTP answer from something else (the egress proxy's 403)
 * - `blocked:<why>` curl failed: connect (rejected), dns, tls, reset, empty, timeout
 * - `dns:<ip>` / `dns:fail`, `udp:echo` / `udp:<error>`, `tcp:echo` / `tcp:<error>`
 * - `rcode:<NOERROR|NXDOMAIN|REFUSED|SERVFAIL>`: the DNS answer's status for `rcode:<name>`
 */
const CHECK = `import concurrent.futures, json, socket, subprocess, sys
WHY = {6: 'dns', 7: 'connect', 28: 'timeout', 35: 'tls', 52: 'empty', 56: 'reset'}
def http(url):
    r = subprocess.run(['curl', '-sS', '--cacert', '/tmp/ca.pem', '--connect-timeout', '3',
        '--max-time', '6', '-w', '\\n%{http_code}', url], capture_output=True, text=True)
    if r.returncode != 0:
        return 'blocked:' + WHY.get(r.returncode, str(r.returncode))
    body, _, code = r.stdout.rpartition('\\n')
    try:
        return 'ok:' + json.loads(body)['name']
    except Exception:
        return 'http:' + code
def dns(name):
    try:
        return 'dns:' + socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except OSError:
        return 'dns:fail'
RCODES = {0: 'NOERROR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 5: 'REFUSED'}
def rcode(name):
    ns = [l.split()[1] for l in open('/etc/resolv.conf') if l.startswith('nameserver')][0]
    qname = b''.join(bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\\0'
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.sendto(b'\\x12\\x34\\x01\\0\\0\\x01\\0\\0\\0\\0\\0\\0' + qname + b'\\0\\x01\\0\\x01', (ns, 53))
        flags = s.recv(4096)[3]
        return 'rcode:' + RCODES.get(flags & 15, str(flags & 15))
    except socket.timeout:
        return 'rcode:timeout'
def udp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        s.connect((host, int(port)))
        s.send(b'ping')
        return 'udp:echo' if s.recv(64) == b'echo:ping' else 'udp:wrong'
    except socket.timeout:
        return 'udp:timeout'
    except OSError as e:
        return 'udp:' + (e.strerror or str(e.errno))
def tcp(host, port):
    try:
        s = socket.create_connection((host, int(port)), 2)
        s.settimeout(2)
        s.sendall(b'ping')
        return 'tcp:echo' if s.recv(64) == b'ping' else 'tcp:wrong'
    except socket.timeout:
        return 'tcp:timeout'
    except OSError as e:
        return 'tcp:' + (e.strerror or str(e.errno))
def check(spec):
    kind, _, rest = spec.partition(':')
    if kind in ('http', 'https'):
        return http(spec)
    if kind == 'dns':
        return dns(rest)
    if kind == 'rcode':
        return rcode(rest)
    host, _, port = rest.partition(':')
    return udp(host, port) if kind == 'udp' else tcp(host, port)
specs = json.loads(sys.argv[1])
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    print(json.dumps(dict(zip(specs, pool.map(check, specs)))))
`

/** Puts the test CA and the checker into the sandbox. */
export async function prepare(sbx: Sandbox, internet: Internet): Promise<void> {
  await sbx.files.write('/tmp/ca.pem', internet.caPem)
  await sbx.files.write('/tmp/check.py', CHECK)
}

/**
 * Runs checks in the sandbox: `http://…`, `https://…`, `dns:<name>`,
 * `udp:<ip>:<port>`, `tcp:<ip>:<port>`; returns spec → outcome.
 */
export async function reach(sbx: Sandbox, specs: string[]): Promise<Record<string, string>> {
  const arg = JSON.stringify(specs).replaceAll("'", "'\\''")
  const got = JSON.parse(await sh(sbx, `python3 /tmp/check.py '${arg}'`)) as Record<string, string>
  return Object.fromEntries(Object.entries(got).map(([k, v]) => [k, refusal(v)]))
}

/**
 * Under runc a denied packet is refused by the sandbox's own kernel (its
 * output hook: curl fails to connect, UDP gets EPERM). Under gVisor the
 * refusal comes from the host's table on the veth, which gVisor's netstack
 * shows as a refusal, an unreachable host or a timeout depending on the
 * protocol. So under gVisor every such outcome reads `refused`, in what a
 * test expects and what it gets alike; the proxy's 403, TLS and DNS refusals
 * and every reached outcome stay exact.
 */
export function refusal(outcome: string): string {
  if (!underGvisor) return outcome
  if (/^(blocked:(connect|timeout)|tcp:(?!echo$)|udp:(?!echo$))/.test(outcome)) return 'refused'
  return outcome
}

/** Expected outcomes as a map, in the order of the specs (a readable matrix in a test). */
export function matrix(rows: Array<[string, string]>): {
  specs: string[]
  want: Record<string, string>
} {
  return {
    specs: rows.map(([s]) => s),
    want: Object.fromEntries(rows.map(([s, outcome]) => [s, refusal(outcome)])),
  }
}
