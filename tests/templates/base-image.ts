// An OCI image made from this branch's base template: its root filesystem
// as one layer (owners shifted back to image ids), then a layer that takes
// out everything Warren adds to an image — `user`, its home and sudoers
// entry, the envd/node/tini mount points — so pulling it must bring them
// back, plus the test's own entries. Built once per test file, pushed to
// registries on loopback by the test.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { BASE_RECIPE, recipeHash } from '@warren/orchestrator'
import { TEMPLATES_DIR } from '../helpers/node-fixture.js'
import {
  type Entry,
  HOST_ARCH,
  type Image,
  layerFromDir,
  makeImage,
  makeLayer,
} from '../helpers/oci-image.js'

const UID_BASE = 100000

/** The base build this branch boots (ownTemplatesDir's), whatever is current on the machine. */
export const baseRootfs = join(
  TEMPLATES_DIR,
  'base',
  'builds',
  recipeHash(BASE_RECIPE, UID_BASE),
  'rootfs',
)

/** An account file of the base template with `user` taken out. */
function withoutUser(file: string): string {
  return readFileSync(join(baseRootfs, 'etc', file), 'utf8')
    .split('\n')
    .filter((l) => !l.startsWith('user:'))
    .map((l) => (l.startsWith('sudo:') ? l.replace(/user$/, '') : l))
    .join('\n')
}

export async function baseImage(
  work: string,
  opts: { entries?: Entry[]; config?: Parameters<typeof makeImage>[0]['config'] } = {},
): Promise<Image> {
  const file = join(work, 'rootfs.tar.gz')
  const rootfs = await layerFromDir(baseRootfs, file, UID_BASE)
  const account = (name: string, mode: number, gid = 0): Entry => ({
    name: `etc/${name}`,
    mode,
    gid,
    body: withoutUser(name),
  })
  const own = await makeLayer(
    [
      account('passwd', 0o644),
      account('group', 0o644),
      account('shadow', 0o640, 42),
      account('gshadow', 0o640, 42),
      { name: 'etc/sudoers.d/.wh.user' },
      { name: 'home/.wh.user' },
      { name: 'opt/.wh.warren' },
      ...(opts.entries ?? []),
    ],
    'zstd',
  )
  // The big layer stays a file in `work` (the caller's to remove) for every push.
  return makeImage({
    layers: [rootfs, own],
    ...(opts.config ? { config: opts.config } : {}),
    platform: { os: 'linux', architecture: HOST_ARCH },
  })
}
