import { Worker } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { TRAINING_QUEUE, type JobResult, type JobView } from '../../src/jobs/job-schema.js';
import { JobConflictError, TrainingJobs } from '../../src/jobs/training-jobs.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';
import { connect, removePrefix, uniquePrefix } from '../helpers/redis.js';

describe('training jobs: idempotency keys', () => {
  const prefix = uniquePrefix('idempotency');
  const redis = connect();
  const jobs = new TrainingJobs({ connection: redis, prefix });
  const params = trainParamsSchema.parse({ epochs: 1, trainSize: 100 });

  afterAll(async () => {
    await jobs.close();
    await removePrefix(redis, prefix);
    await redis.quit();
  });

  it('when requests with one key arrive together, then exactly one creates the job and the others get it', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, () => jobs.enqueue(params, 'same-moment')));
    expect(new Set(answers.map((a) => a.view.id)).size).toBe(1);
    expect(answers.filter((a) => a.created)).toHaveLength(1);
    expect(answers.every((a) => JSON.stringify(a.view.params) === JSON.stringify(params))).toBe(true);
    expect((await jobs.counts()).queued).toBe(1);
  });

  it('when requests with one key but other parameters arrive together, then all but the first are conflicts', async () => {
    const other = trainParamsSchema.parse({ epochs: 2, trainSize: 100 });
    const answers = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => jobs.enqueue(i % 2 ? other : params, 'same-moment-other-params')),
    );
    const created = answers.filter((a) => a.status === 'fulfilled' && a.value.created);
    const conflicts = answers.filter((a) => a.status === 'rejected' && a.reason instanceof JobConflictError);
    expect(created).toHaveLength(1);
    // Five asked for what was created (one created it, four get it back); five asked for something else.
    expect(conflicts).toHaveLength(5);
  });
});

describe('training jobs: views', () => {
  const prefix = uniquePrefix('views');
  const redis = connect();
  const jobs = new TrainingJobs({ connection: redis, prefix });
  const params = trainParamsSchema.parse({ epochs: 1, trainSize: 100 });
  const result: JobResult = {
    modelVersion: 1,
    metrics: {
      accuracy: { train: 1, validation: null, test: 1 },
      loss: { train: 0, validation: null, test: 0 },
      trainingSeconds: 1,
      imagesPerSecond: 1,
    },
  };

  afterAll(async () => {
    await jobs.close();
    await removePrefix(redis, prefix);
    await redis.quit();
  });

  it('when a job finishes while it is being read, then a final state always comes with its result and end time', async () => {
    const connection = connect();
    const worker = new Worker(TRAINING_QUEUE, async () => result, { connection, prefix, concurrency: 4 });
    const torn: JobView[] = [];
    try {
      for (let round = 0; round < 40; round++) {
        const { view } = await jobs.enqueue(params);
        for (;;) {
          const seen = await jobs.get(view.id);
          if (seen?.state === 'completed') {
            if (seen.result === null || seen.finishedAt === null) torn.push(seen);
            break;
          }
        }
      }
    } finally {
      await worker.close();
      await connection.quit();
    }
    expect(torn).toEqual([]);
  });
});
