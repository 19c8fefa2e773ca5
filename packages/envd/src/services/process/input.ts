import { Code, ConnectError } from '@connectrpc/connect'
import type { ProcessInput } from '@warren/shared/gen/process/process_pb'
import type { ProcessHandle } from './process-handle.js'

/** Writes one ProcessInput to the process's stdin or PTY. */
export function writeInput(handle: ProcessHandle, input: ProcessInput | undefined): void {
  const value = input?.input
  if (value?.case === 'stdin') handle.proc.writeStdin(value.value)
  else if (value?.case === 'pty') handle.proc.writePty(value.value)
  else throw new ConnectError('input (stdin or pty) is required', Code.InvalidArgument)
}
