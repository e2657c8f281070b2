import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend/index.js';
import { runTraining } from '../../src/ml/run-training.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';
import { ModelStore } from '../../src/registry/model-store.js';
import { connect, REDIS_URL, removePrefix, uniquePrefix } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const served = async (port: number) =>
  ((await (await fetch(`http://127.0.0.1:${port}/models`)).json()) as { serving: number | null }).serving;

describe('the API process', () => {
  const prefix = uniquePrefix('server');
  const port = 3500 + (process.pid % 400);
  let dir: string;
  let api: ChildProcess;
  let stderr = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'server-'));
    api = spawn(process.execPath, ['--import', 'tsx', 'src/api/server.ts'], {
      env: {
        ...process.env,
        REDIS_URL,
        REDIS_PREFIX: prefix,
        MODEL_DIR: join(dir, 'models'),
        PORT: String(port),
        MODEL_POLL_MS: '200',
        TF_BACKEND: 'wasm',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    api.stdout!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    api.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    for (let i = 0; i < 150; i++) {
      if (
        await fetch(`http://127.0.0.1:${port}/models`).then(
          (r) => r.ok,
          () => false,
        )
      )
        return;
      await sleep(100);
    }
    throw new Error(`the API did not start: ${stderr}`);
  });

  afterAll(async () => {
    if (api.exitCode === null) api.kill('SIGKILL');
    const redis = connect();
    await removePrefix(redis, prefix);
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  });

  it('when it starts, then it logs the TensorFlow.js backend it chose as JSON', () => {
    const line = stderr.split('\n').find((l) => l.includes('TensorFlow.js backend'));
    expect(JSON.parse(line!)).toMatchObject({ backend: 'wasm', msg: 'TensorFlow.js backend' });
  });

  it(
    'when a version appears in the store without an announcement, then the periodic check starts serving it',
    { timeout: 60_000 },
    async () => {
      expect(await served(port)).toBeNull();
      const backend = await initBackend('wasm');
      const { model, report } = await runTraining(
        trainParamsSchema.parse({ epochs: 1, trainSize: 1000, validationSize: 0 }),
        { backend },
      );
      // Published straight into the store: no Redis message, as when Redis was away.
      await new ModelStore(join(dir, 'models')).publish(model, report, { jobId: null });
      model.dispose();
      let serving: number | null = null;
      for (let i = 0; i < 100 && serving === null; i++) {
        serving = await served(port);
        await sleep(100);
      }
      expect(serving).toBe(1);
    },
  );

  it('when sent SIGTERM, then it exits cleanly', async () => {
    const exited = new Promise<number | null>((resolve) => api.once('exit', resolve));
    api.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
