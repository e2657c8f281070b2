import pino, { type Logger } from 'pino';

/** One structured logger per process; image payloads and secrets never reach it. */
export function createLogger(level: string, name: string): Logger {
  return pino({
    name,
    level,
    redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]'], censor: '[redacted]' },
  });
}
