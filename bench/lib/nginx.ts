import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { processGroup } from './host.js'

/**
 * nginx as a reverse proxy to `upstream` (keep-alive connections to it, as
 * Warren's proxies keep them) on `listenPort`, with `workers` worker
 * processes: the baseline of the proxy benchmarks.
 */
export function startNginx(
  listenPort: number,
  upstream: string,
  workers: number,
): { pids(): number[]; stop(): void } {
  const dir = mkdtempSync('/tmp/warren-bench-nginx-')
  const conf = join(dir, 'nginx.conf')
  writeFileSync(
    conf,
    `worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  upstream sandbox { server ${upstream}; keepalive 64; }
  server {
    listen 127.0.0.1:${listenPort};
    location / {
      proxy_pass http://sandbox;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`,
  )
  execFileSync('nginx', ['-c', conf, '-p', dir])
  const master = Number(readFileSync(join(dir, 'nginx.pid'), 'utf8').trim())
  return {
    pids: () => processGroup(master),
    stop() {
      try {
        execFileSync('nginx', ['-c', conf, '-p', dir, '-s', 'stop'])
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}
