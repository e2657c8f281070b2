import pino, { type Logger, type LoggerOptions } from 'pino';

/** Where a process writes its logs, as far as the choice of format goes. */
export interface LogOutput {
  isTTY: boolean;
  env: NodeJS.ProcessEnv;
}

/**
 * Readable lines for a person at a terminal; JSON lines for anything else (a pipe, a container, a
 * log collector, a test that reads them), as fastify/demo does. pino-pretty formats in pino's
 * transport thread, off the event loop.
 */
export function loggerOptions(
  level: string,
  name: string,
  output: LogOutput = { isTTY: Boolean(process.stdout.isTTY), env: process.env },
): LoggerOptions {
  const options: LoggerOptions = {
    name,
    level,
    redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]'], censor: '[redacted]' },
  };
  const pretty = output.isTTY && output.env.NODE_ENV !== 'production' && !output.env.VITEST;
  if (!pretty) return options;
  return {
    ...options,
    transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } },
  };
}

/** One structured logger per process; image payloads and secrets never reach it. */
export function createLogger(level: string, name: string): Logger {
  return pino(loggerOptions(level, name));
}
