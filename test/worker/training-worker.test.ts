import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/jobs/job-schema.js';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { startTrainingWorker, type TrainingWorkerOptions } from '../../src/worker/training-worker.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { untilJob, useTrainingJobs } from '../helpers/training-jobs.js';
import { workerOptions } from '../helpers/training-worker.js';
import { trainingReportFixture } from '../helpers/training-report.js';

describe('the training worker, in process', () => {
  const { redis, prefix, jobs } = useTrainingJobs('worker');
  const dir = useTempDir('worker');
  const store = new FileModelStore(join(dir, 'models'));
  let worker: Awaited<ReturnType<typeof startTrainingWorker>>;

  const waitFor = (id: string, done: (view: JobView) => boolean) => untilJob(jobs, id, done);

  // The test's own jobs, so a test can step in where the worker claims a job's ending.
  const startWorker = (extra: Partial<TrainingWorkerOptions> = {}) =>
    startTrainingWorker(workerOptions({ redis, prefix, dir }, { jobs, ...extra }));

  beforeAll(() => initBackend('wasm'));
  afterAll(async () => {
    await worker?.close();
  });

  it('when a job already has a published version (its worker died before saying so), then the retry reports that version and publishes none', async () => {
    const { view } = await jobs.enqueue(trainParamsSchema.parse({ epochs: 1, trainSize: 500 }));
    const model = buildModel('seed', 1);
    const earlier = await store.publish(model, trainingReportFixture(), { jobId: view.id });
    model.dispose();

    worker = await startWorker();
    const final = await waitFor(view.id, (v) => v.finishedAt !== null);
    expect(final.state).toBe('completed');
    expect(final.result?.modelVersion).toBe(earlier.version);
    expect((await store.list()).map((m) => m.version)).toEqual([earlier.version]);
  });

  /**
   * Runs `atClaim` when the worker, its training and evaluation done, claims the right to publish
   * `jobId`: whatever it does lands before that claim, by construction.
   */
  function beforePublishing(jobId: string, atClaim: () => Promise<unknown>): void {
    const claim = jobs.endings.claimPublishing.bind(jobs.endings);
    jobs.endings.claimPublishing = async (id, token) => {
      if (id === jobId) {
        jobs.endings.claimPublishing = claim;
        await atClaim();
      }
      return claim(id, token);
    };
  }

  it('when a job is cancelled after training, before it publishes, then it ends cancelled and publishes nothing', async () => {
    const before = (await store.list()).length;
    const { view } = await jobs.enqueue(trainParamsSchema.parse({ epochs: 1, trainSize: 500 }));
    beforePublishing(view.id, () => jobs.cancel(view.id));
    const final = await waitFor(view.id, (v) => v.finishedAt !== null);
    expect(final.state).toBe('cancelled');
    expect(final.result).toBeNull();
    expect(final.history).toHaveLength(1);
    expect((await store.list()).length).toBe(before);
    expect(existsSync(join(dir, 'checkpoints', view.id))).toBe(false);
  });

  it('when a cancel message is lost (only the flag in Redis says so), then the job still ends cancelled before it publishes', async () => {
    const before = (await store.list()).length;
    const { view } = await jobs.enqueue(trainParamsSchema.parse({ epochs: 1, trainSize: 500 }));
    // What TrainingJobs.cancel stores, without the message on the cancel channel.
    beforePublishing(view.id, () => redis.set(`${prefix}:ending:${view.id}`, 'cancelled', 'EX', 600));
    const final = await waitFor(view.id, (v) => v.finishedAt !== null);
    expect(final.state).toBe('cancelled');
    expect(final.result).toBeNull();
    expect(final.history).toHaveLength(1);
    expect((await store.list()).length).toBe(before);
  });

  /** This describe's worker again, now with a time limit (one worker, so it takes every job). */
  async function restartWorkerWithLimit(jobMaxSeconds: number): Promise<void> {
    await worker.close();
    worker = await startWorker({ jobMaxSeconds });
  }

  it('when a job trains past JOB_MAX_SECONDS, then it stops, fails saying so, and leaves no version or checkpoint', async () => {
    const before = (await store.list()).length;
    await restartWorkerWithLimit(2);
    const { view } = await jobs.enqueue(trainParamsSchema.parse({ epochs: 20, trainSize: 5_000 }));
    const final = await waitFor(view.id, (v) => v.finishedAt !== null);
    expect(final.state).toBe('failed');
    expect(final.error).toBe('training took longer than JOB_MAX_SECONDS (2 s) and was stopped');
    expect(final.attempts).toBe(1);
    expect((await store.list()).length).toBe(before);
    expect(existsSync(join(dir, 'checkpoints', view.id))).toBe(false);
  });

  it('when earlier attempts already trained for most of the limit, then the time they took counts', async () => {
    await worker.close();
    const { view } = await jobs.enqueue(trainParamsSchema.parse({ epochs: 1, trainSize: 2_000 }));
    // What a worker that handed the job back after three epochs of 200 s would have left.
    const job = (await jobs.queue.getJob(view.id))!;
    const epoch = { loss: 1, accuracy: 0.5, valLoss: null, valAccuracy: null, seconds: 200 };
    await job.updateProgress({
      ...{ epoch: 3, epochs: 1, batch: 0, batches: 0, percent: 0, imagesPerSecond: 0, etaSeconds: 0 },
      ...{ loss: 1, accuracy: 0.5 },
      history: [1, 2, 3].map((n) => ({ epoch: n, ...epoch })),
    });
    // 600 s of the 600.2 are used up: the 0.2 s left cannot hold the epoch and its evaluation.
    await restartWorkerWithLimit(600.2);
    const final = await waitFor(view.id, (v) => v.finishedAt !== null);
    expect(final.state).toBe('failed');
    expect(final.error).toMatch(/JOB_MAX_SECONDS \(600.2 s\)/);
  });
});
