import { describe, expect, it } from 'vitest';
import { loggerOptions } from '../src/logger.js';

describe('log format', () => {
  it('when the output is a pipe, then logs are JSON lines', () => {
    expect(loggerOptions('info', 'api', { isTTY: false, env: {} }).transport).toBeUndefined();
  });

  it('when the output is a terminal, then logs go through pino-pretty', () => {
    expect(loggerOptions('info', 'api', { isTTY: true, env: {} }).transport).toMatchObject({
      target: 'pino-pretty',
    });
  });

  it.each([{ NODE_ENV: 'production' }, { VITEST: 'true' }])(
    'when the output is a terminal but %j, then logs stay JSON lines',
    (env) => {
      expect(loggerOptions('info', 'api', { isTTY: true, env }).transport).toBeUndefined();
    },
  );

  it('when pretty or not, then keys in request headers are redacted', () => {
    for (const isTTY of [false, true]) {
      expect(loggerOptions('info', 'api', { isTTY, env: {} }).redact).toMatchObject({
        paths: expect.arrayContaining(['req.headers.authorization', 'req.headers["x-api-key"]']),
      });
    }
  });
});
