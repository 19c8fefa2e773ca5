import { type DestinationStream, type Logger, pino } from 'pino'
import { currentRequestId } from './request-id.js'

export type { Logger }

/**
 * JSON lines on stderr; WARREN_LOG_LEVEL picks the level (default info).
 * Each line names its component once (`component`; a process running
 * several, as `warren up` does, makes one logger per component with
 * `componentLogger` rather than a child binding a second `component` key),
 * and, while a request is handled, its `requestId` (request-id.ts).
 */
export function createLogger(
  component: string,
  level = process.env.WARREN_LOG_LEVEL ?? 'info',
  destination: DestinationStream = pino.destination(2),
): Logger {
  return pino(
    {
      level,
      base: { component },
      mixin() {
        const requestId = currentRequestId()
        return requestId ? { requestId } : {}
      },
    },
    destination,
  )
}

/**
 * A logger of another component of the same process: the parent's level
 * and output, its own `component` (a child binding would add a second
 * `component` key to every line instead of replacing it).
 */
export function componentLogger(parent: Logger, component: string): Logger {
  const stream = (parent as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym]
  return createLogger(component, parent.level, stream)
}
