import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/jobs/job-schema.js';
import { cancelChannel } from '../../src/jobs/cancel-channel.js';
import { TrainingJobs } from '../../src/jobs/training-jobs.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';
import { startTrainingWorker } from '../../src/worker/training-worker.js';
import { connect, removePrefix, uniquePrefix } from '../helpers/redis.js';
import { until } from '../helpers/until.js';

const GARBAGE = ['', '../../etc/passwd', 'job id with spaces', '{"jobId":"x"}', 'x'.repeat(300)];

describe('the cancel channel', () => {
  const prefix = uniquePrefix('cancel-channel');
  const redis = connect();
  const logs: { msg: string; problem?: string }[] = [];
  let dir: string;
  let jobs: TrainingJobs;
  let worker: Awaited<ReturnType<typeof startTrainingWorker>>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cancel-channel-'));
    jobs = new TrainingJobs({ connection: redis, prefix });
    worker = await startTrainingWorker({
      connection: redis,
      prefix,
      modelDir: join(dir, 'models'),
      checkpointDir: join(dir, 'checkpoints'),
      logger: pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line)) }),
      backend: 'wasm',
    });
  });
  afterAll(async () => {
    await worker.close();
    await jobs.close();
    await removePrefix(redis, prefix);
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  });

  it('when garbage is published on it, then the worker logs and drops each message, and a real cancel still stops a job', async () => {
    for (const message of GARBAGE) await redis.publish(cancelChannel(prefix), message);
    const dropped = await until('the bad messages to be logged', () => {
      const found = logs.filter((l) => l.msg === 'dropped a malformed pub/sub message');
      return found.length >= GARBAGE.length ? found : undefined;
    });
    expect(dropped).toHaveLength(GARBAGE.length);
    expect(dropped[1]!.problem).toContain('not a job id');

    const { view } = await jobs.enqueue(trainParamsSchema.parse({ epochs: 50, trainSize: 2_000 }));
    await until('the job to train', async () => ((await jobs.get(view.id))?.progress ? true : undefined));
    await jobs.cancel(view.id);
    const final = await until('the job to end', async () => {
      const v = (await jobs.get(view.id)) as JobView;
      return v.finishedAt ? v : undefined;
    });
    expect(final.state).toBe('cancelled');
    expect(final.history.length).toBeLessThan(50);
  });
});
