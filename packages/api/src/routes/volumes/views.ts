import { z } from '@hono/zod-openapi'
import { isVolumeId } from '@warren/shared'
import type { Volume } from '../../store/volumes.js'

export const volumeIdParams = z.object({
  volumeID: z
    .string()
    .refine(isVolumeId, 'invalid volume id (20 lowercase letters and digits)')
    .openapi({ param: { name: 'volumeID', in: 'path' }, example: 'v1a2b3c4d5e6f7g8h9j0' }),
})

/** E2B's `Volume` (list items), with Warren's `sizeMB`. */
export const volumeSchema = z
  .object({ volumeID: z.string(), name: z.string(), sizeMB: z.number().int() })
  .openapi('Volume')

/** E2B's `VolumeAndToken`: the token authorizes the volume's content API. */
export const volumeAndTokenSchema = volumeSchema
  .extend({ token: z.string(), domain: z.string() })
  .openapi('VolumeAndToken')

export function volumeView(v: Volume) {
  return { volumeID: v.volumeId, name: v.name, sizeMB: v.sizeMb }
}

export function volumeAndTokenView(v: Volume, domain: string) {
  return { ...volumeView(v), token: v.token, domain }
}
