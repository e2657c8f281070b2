import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** Starts an entry point with only `env` (plus PATH), and returns how it ended. */
function start(entry: string, env: Record<string, string>) {
  return spawnSync(process.execPath, ['--import', 'tsx', entry], {
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('starting on the network without a key', () => {
  it.each(['src/api/server.ts', 'src/main.ts'])(
    'when %s starts with HOST=0.0.0.0 and no API_KEY, then it exits 1 naming API_KEY and ALLOW_UNAUTHENTICATED',
    (entry) => {
      // Should the check be missing: no Redis to reach (and none `npm start` would start), no workers.
      const result = start(entry, {
        HOST: '0.0.0.0',
        PORT: '0',
        REDIS_URL: 'redis://redis.invalid:6379',
        WORKERS: '0',
      });
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(
        'HOST is 0.0.0.0, which other machines can reach, and API_KEY is not set',
      );
      expect(result.stderr).toContain('ALLOW_UNAUTHENTICATED=true');
    },
  );
});
