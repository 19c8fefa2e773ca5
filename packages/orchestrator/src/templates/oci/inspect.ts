import type { ImageView } from './image-view.js'
import { hostPlatform } from './platform.js'

export type Libc = 'glibc' | 'musl' | 'unknown'

/** Per architecture: the dynamic loaders, and the multiarch directory of Debian-like images. */
const ABI: Record<string, { glibc: string; musl: string; triple: string }> = {
  amd64: {
    glibc: '/lib64/ld-linux-x86-64.so.2',
    musl: '/lib/ld-musl-x86_64.so.1',
    triple: 'x86_64-linux-gnu',
  },
  arm64: {
    glibc: '/lib/ld-linux-aarch64.so.1',
    musl: '/lib/ld-musl-aarch64.so.1',
    triple: 'aarch64-linux-gnu',
  },
}

/**
 * Whether the host's Node binary, mounted at /opt/warren/bin/node to run
 * envd, can start on this image: it is linked against glibc (its loader
 * path is fixed) and libstdc++. musl images (Alpine) have neither, so envd
 * cannot run there yet.
 */
export function inspectRuntime(view: ImageView): {
  libc: Libc
  envdRunnable: boolean
  notes: string[]
} {
  const abi = ABI[hostPlatform().architecture]
  if (!abi) return { libc: 'unknown', envdRunnable: false, notes: ['unknown architecture'] }
  const has = (p: string) => view.stat(p)?.st.isFile() ?? false
  if (has(abi.glibc)) {
    const dirs = [
      `/usr/lib/${abi.triple}`,
      `/lib/${abi.triple}`,
      '/usr/lib64',
      '/lib64',
      '/usr/lib',
      '/lib',
    ]
    if (dirs.some((d) => has(`${d}/libstdc++.so.6`))) {
      return { libc: 'glibc', envdRunnable: true, notes: [] }
    }
    return {
      libc: 'glibc',
      envdRunnable: false,
      notes: ['libstdc++.so.6 is missing: envd (the host Node) cannot run; install libstdc++6'],
    }
  }
  if (has(abi.musl)) {
    return {
      libc: 'musl',
      envdRunnable: false,
      notes: ['a musl image (Alpine?): envd runs on the host Node, which needs glibc'],
    }
  }
  return {
    libc: 'unknown',
    envdRunnable: false,
    notes: [`no dynamic loader (${abi.glibc}): envd cannot run in this image`],
  }
}
