import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { REDIS_URL } from './redis.js';
import { freePort } from './redis-server.js';
import { until } from './until.js';

/** Resolves with the exit code once `child` has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', resolve));
}

export interface ApiProcess {
  child: ChildProcess;
  url: string;
  port: number;
  /** What it has written so far, stdout and stderr together. */
  output: string;
}

/**
 * src/api/server.ts in a process of its own, as `npm run start:api` runs it: on a free port, on
 * `prefix` of the shared Redis, with its store in `dir` (models in models/), the wasm backend and
 * logs from info up; `env` adds to that. Started before the calling describe block's first test
 * (ready once it answers /healthz), killed after its last. The handle is filled in once started.
 */
export function useApiProcess(
  { prefix, dir }: { prefix: string; dir: string },
  env: Record<string, string> = {},
): ApiProcess {
  const api = { output: '' } as ApiProcess;
  beforeAll(async () => {
    api.port = await freePort();
    api.url = `http://127.0.0.1:${api.port}`;
    api.child = spawn(process.execPath, ['--import', 'tsx', 'src/api/server.ts'], {
      env: {
        ...process.env,
        REDIS_URL,
        REDIS_PREFIX: prefix,
        // The whole store in `dir`: datasets/ and feedback/ too, not ./data of the working directory.
        STORE_URL: dir,
        MODEL_DIR: join(dir, 'models'),
        PORT: String(api.port),
        TF_BACKEND: 'wasm',
        LOG_LEVEL: 'info',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    api.child.stdout!.on('data', (chunk: Buffer) => (api.output += chunk.toString()));
    api.child.stderr!.on('data', (chunk: Buffer) => (api.output += chunk.toString()));
    // The deadline is only a net, far above a start on a busy machine.
    await until(
      'the API to answer',
      async () => {
        if (api.child.exitCode !== null) throw new Error(`the API exited: ${api.output}`);
        const answers = await fetch(`${api.url}/healthz`).then(
          (r) => r.ok,
          () => false,
        );
        return answers || undefined;
      },
      { timeoutMs: 100_000, everyMs: 100 },
    );
  });
  afterAll(() => {
    if (api.child?.exitCode === null) api.child.kill('SIGKILL');
  });
  return api;
}
