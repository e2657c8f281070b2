import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TRAINING_QUEUE } from '../../src/jobs/job-schema.js';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import { MODEL_CHANNEL } from '../../src/registry/announcer.js';
import { ALIAS_CHANNEL, ModelAliases } from '../../src/registry/model-aliases.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { useApiProcess } from '../helpers/processes.js';
import { useRedisPrefix } from '../helpers/redis.js';
import { useTempDir } from '../helpers/temp-dir.js';
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
  const { redis, prefix } = useRedisPrefix('pubsub-garbage');
  const dir = useTempDir('pubsub-garbage');
  let version: number;

  beforeAll(async () => {
    await initBackend('wasm');
    const model = buildModel('seed', 1);
    version = (
      await new FileModelStore(join(dir, 'models')).publish(model, trainingReportFixture(), { jobId: null })
    ).version;
    model.dispose();
  });
  const api = useApiProcess({ prefix, dir });

  const predict = (query = '') =>
    fetch(`${api.url}/predict${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: Array.from({ length: IMAGE_PIXELS }, () => 0) }),
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
      if (api.child.exitCode !== null) break;
      answer = await predict('?version=production').catch(() => undefined);
      if (answer?.status !== 200) await sleep(50);
    }
    expect(api.child.exitCode, api.output.slice(-2000)).toBeNull();
    expect(answer?.status).toBe(200);
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
    expect((await predict()).status).toBe(200);
    for (let i = 0; i < 200 && count(api.output, 'dropped a malformed') < 3 * GARBAGE.length; i++)
      await sleep(50);
    expect(count(api.output, 'dropped a malformed pub/sub message')).toBe(2 * GARBAGE.length);
    expect(count(api.output, 'dropped a malformed job event')).toBe(GARBAGE.length);
  });
});

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}
