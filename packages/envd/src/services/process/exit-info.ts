import { constants } from 'node:os'

/** Go's names for signals, which E2B envd puts in the end event's status. */
const SIGNAL_TEXT: Record<string, string> = {
  SIGHUP: 'hangup',
  SIGINT: 'interrupt',
  SIGQUIT: 'quit',
  SIGILL: 'illegal instruction',
  SIGTRAP: 'trace/breakpoint trap',
  SIGABRT: 'aborted',
  SIGBUS: 'bus error',
  SIGFPE: 'floating point exception',
  SIGKILL: 'killed',
  SIGUSR1: 'user defined signal 1',
  SIGSEGV: 'segmentation fault',
  SIGUSR2: 'user defined signal 2',
  SIGPIPE: 'broken pipe',
  SIGALRM: 'alarm clock',
  SIGTERM: 'terminated',
}

export interface ExitInfo {
  exitCode: number
  exited: boolean
  status: string
  error?: string
}

function signalName(signal: string | number): string {
  if (typeof signal === 'string') return signal
  const entry = Object.entries(constants.signals).find(([, n]) => n === signal)
  return entry?.[0] ?? `signal ${signal}`
}

/**
 * The end event as the SDK expects it: a normal exit reports its code
 * ("exit status N", with `error` set when N ≠ 0, which CommandExitError
 * shows); death by signal reports exit code -1 and "signal: killed".
 */
export function exitInfo(code: number | null, signal: string | number | null): ExitInfo {
  if (signal !== null && signal !== 0) {
    const name = signalName(signal)
    const status = `signal: ${SIGNAL_TEXT[name] ?? name}`
    return { exitCode: -1, exited: false, status, error: status }
  }
  const exitCode = code ?? 0
  const status = `exit status ${exitCode}`
  return exitCode === 0
    ? { exitCode, exited: true, status }
    : { exitCode, exited: true, status, error: status }
}
