import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRAINING_QUEUE } from '../../src/jobs/job-schema.js';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { PIXELS } from '../../src/ml/predict.js';
import { MODEL_CHANNEL } from '../../src/registry/announcer.js';
import { ALIAS_CHANNEL, ModelAliases } from '../../src/registry/model-aliases.js';
import { ModelStore } from '../../src/registry/model-store.js';
import { connect, REDIS_URL, removePrefix, uniquePrefix } from '../helpers/redis.js';
import { freePort } from '../helpers/redis-server.js';
import { trainingReportFixture } from '../helpers/training-report.js';
import { sleep } from '../helpers/until.js';

const GARBAGE = [
  'not json',
  '{',
  'null',
  '[1,2]',
  '{"version":"7"}',
  '{"name":"UPPER","version":1}',
  'x'.repeat(5000),
];

describe('the API process and garbage on its Redis channels', () => {
  const prefix = uniquePrefix('pubsub-garbage');
  const redis = connect();
  let dir: string;
  let api: ChildProcess;
  let url: string;
  let output = '';
  let version: number;

  beforeAll(async () => {
    await initBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'pubsub-garbage-'));
    const model = buildModel('seed', 1);
    version = (
      await new ModelStore(join(dir, 'models')).publish(model, trainingReportFixture(), { jobId: null })
    ).version;
    model.dispose();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    api = spawn(process.execPath, ['--import', 'tsx', 'src/api/server.ts'], {
      env: {
        ...process.env,
        REDIS_URL,
        REDIS_PREFIX: prefix,
        MODEL_DIR: join(dir, 'models'),
        PORT: String(port),
        TF_BACKEND: 'wasm',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    api.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    api.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    for (let i = 0; i < 300; i++) {
      if (
        await fetch(`${url}/healthz`).then(
          (r) => r.ok,
          () => false,
        )
      )
        return;
      await sleep(100);
    }
    throw new Error(`the API did not start: ${output}`);
  });

  afterAll(async () => {
    if (api.exitCode === null) api.kill('SIGKILL');
    await removePrefix(redis, prefix);
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  });

  const predict = (query = '') =>
    fetch(`${url}/predict${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: Array.from({ length: PIXELS }, () => 0) }),
    });

  it('when garbage is published on the alias and model channels and written to the job event stream, then the API logs it, drops it and keeps serving', async () => {
    for (const message of GARBAGE) {
      await redis.publish(ALIAS_CHANNEL(prefix), message);
      await redis.publish(MODEL_CHANNEL(prefix), message);
      await redis.xadd(
        `${prefix}:${TRAINING_QUEUE}:events`,
        '*',
        'event',
        'progress',
        'jobId',
        'j',
        'data',
        message,
      );
    }
    // A real alias change after the garbage: heard, so the alias channel is still followed.
    await new ModelAliases(redis, prefix).set('production', version);
    let answer: Response | undefined;
    for (let i = 0; i < 200 && answer?.status !== 200; i++) {
      if (api.exitCode !== null) break;
      answer = await predict('?version=production').catch(() => undefined);
      if (answer?.status !== 200) await sleep(50);
    }
    expect(api.exitCode, output.slice(-2000)).toBeNull();
    expect(answer?.status).toBe(200);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await predict()).status).toBe(200);
    for (let i = 0; i < 200 && count(output, 'dropped a malformed') < 3 * GARBAGE.length; i++)
      await sleep(50);
    expect(count(output, 'dropped a malformed pub/sub message')).toBe(2 * GARBAGE.length);
    expect(count(output, 'dropped a malformed job event')).toBe(GARBAGE.length);
  });
});

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}
