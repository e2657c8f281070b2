import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { exited } from '../helpers/processes.js';

/** src/api/server.ts with `env` added: its exit code and all it wrote. It refuses before any Redis. */
async function startApi(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/api/server.ts'], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', API_KEY: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await exited(child);
  return { code, output };
}

describe('the API process refuses to start', () => {
  it('when PREDICT_REQUIRES_KEY=true and API_KEY is not set, then it exits 1 naming both, /predict never open', async () => {
    const { code, output } = await startApi({ PREDICT_REQUIRES_KEY: 'true' });
    expect(code).toBe(1);
    expect(output).toContain('PREDICT_REQUIRES_KEY asks for API_KEY, which is not set');
    expect(output).not.toContain('listening');
  });

  it('when API_KEY is too short, then it exits 1 naming API_KEY without printing the key', async () => {
    const { code, output } = await startApi({
      API_KEY: 'hunter2-secret',
      REDIS_URL: 'redis://:pw-hunter3@x:1',
    });
    expect(code).toBe(1);
    expect(output).toContain('API_KEY: must be at least 16 characters (got a value of 14 characters)');
    expect(output).not.toContain('hunter2');
    expect(output).not.toContain('hunter3');
  });
});
