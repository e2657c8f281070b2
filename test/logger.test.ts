import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify, stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loggerOptions } from '../src/logger.js';
import { runInTerminal } from './helpers/terminal.js';

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

describe("a process's logs", () => {
  // One line through createLogger, as the API and the worker log, in a process of its own: outside
  // the tests (no VITEST) and outside production, so only where the output goes decides.
  const command = [
    ...[process.execPath, '--import', 'tsx', '--input-type=module', '-e'],
    `const { createLogger } = await import(${JSON.stringify(fileURLToPath(new URL('../src/logger.ts', import.meta.url)))});
     createLogger('info', 'api').info({ port: 3000 }, 'listening');`,
  ];
  const env = { ...process.env };
  delete env.VITEST;
  delete env.NODE_ENV;

  it('when written to a pipe, then each is a JSON line', async () => {
    const { stdout } = await promisify(execFile)(command[0]!, command.slice(1), { env });
    expect(JSON.parse(stdout)).toMatchObject({ level: 30, name: 'api', port: 3000, msg: 'listening' });
  });

  it('when written to a terminal, then pino-pretty prints a readable line, in colour', async () => {
    const { code, output } = await runInTerminal(command, { env });
    expect(code).toBe(0);
    expect(output).toContain('\x1b[');
    const plain = stripVTControlCharacters(output);
    expect(plain).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(api\): listening\r?$/m);
    expect(plain).toMatch(/^ {4}port: 3000\r?$/m);
    expect(plain).not.toContain('"level"');
  });
});
