import pino, { type Level, type Logger } from 'pino';

/** A logger that parses each line it writes, at `level` or above, into `lines`: for tests that read the logs. */
export function logInto<T>(lines: T[], level: Level = 'info'): Logger {
  return pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as T) });
}
