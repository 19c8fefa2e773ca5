import type { MessageInitShape } from '@bufbuild/protobuf'
import type { FilesystemEventSchema } from '@warren/shared/gen/filesystem/filesystem_pb'
import type { WatchEvent } from './dir-watcher.js'
import { entryInfo } from './entry-info.js'

export type FilesystemEventInit = MessageInitShape<typeof FilesystemEventSchema>

/** The wire event; with includeEntry, the entry is looked up best-effort (absent once gone). */
export function toFilesystemEvent(e: WatchEvent, includeEntry: boolean): FilesystemEventInit {
  if (!includeEntry) return { name: e.name, type: e.type }
  let entry: ReturnType<typeof entryInfo> | undefined
  try {
    entry = entryInfo(e.path)
  } catch {
    entry = undefined
  }
  return { name: e.name, type: e.type, entry }
}
