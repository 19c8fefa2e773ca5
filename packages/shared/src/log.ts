import { type Logger, pino } from 'pino'

export type { Logger }

/** JSON lines on stderr; WARREN_LOG_LEVEL picks the level (default info). */
export function createLogger(
  component: string,
  level = process.env.WARREN_LOG_LEVEL ?? 'info',
): Logger {
  return pino({ name: component, level, base: { component } }, pino.destination(2))
}
