import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/jobs/job-schema.js';
import { TrainingJobs } from '../../src/jobs/training-jobs.js';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';
import { ModelStore } from '../../src/registry/model-store.js';
import { startTrainingWorker } from '../../src/worker/training-worker.js';
import { connect, removePrefix, uniquePrefix } from '../helpers/redis.js';
import { trainingReportFixture } from '../helpers/training-report.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the training worker, in process', () => {
  const prefix = uniquePrefix('worker');
  const redis = connect();
  let dir: string;
  let jobs: TrainingJobs;
  let store: ModelStore;
  let worker: Awaited<ReturnType<typeof startTrainingWorker>>;

  async function waitFor(id: string, done: (view: JobView) => boolean): Promise<JobView> {
    for (let i = 0; i < 2400; i++) {
      const view = await jobs.get(id);
      if (view && done(view)) return view;
      await sleep(50);
    }
    throw new Error(`job ${id} did not get there: ${JSON.stringify(await jobs.get(id))}`);
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'worker-'));
    jobs = new TrainingJobs({ connection: redis, prefix });
    store = new ModelStore(join(dir, 'models'));
    await initBackend('wasm');
  });

  afterAll(async () => {
    await worker?.close();
    await jobs.close();
    await removePrefix(redis, prefix);
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  });

  it('when a job already has a published version (its worker died before saying so), then the retry reports that version and publishes none', async () => {
    const { view } = await jobs.enqueue(trainParamsSchema.parse({ epochs: 1, trainSize: 500 }));
    const model = buildModel('seed', 1);
    const earlier = await store.publish(model, trainingReportFixture(), { jobId: view.id });
    model.dispose();

    worker = await startTrainingWorker({
      connection: redis,
      prefix,
      modelDir: store.root,
      checkpointDir: join(dir, 'checkpoints'),
      logger: pino({ level: 'silent' }),
      backend: 'wasm',
    });
    const final = await waitFor(view.id, (v) => v.finishedAt !== null);
    expect(final.state).toBe('completed');
    expect(final.result?.modelVersion).toBe(earlier.version);
    expect((await store.list()).map((m) => m.version)).toEqual([earlier.version]);
  });

  it('when a job is cancelled during its final evaluation, then it ends cancelled and publishes nothing', async () => {
    const before = (await store.list()).length;
    // A short epoch, then a long evaluation (20,000 validation and 10,000 test images).
    const { view } = await jobs.enqueue(
      trainParamsSchema.parse({ epochs: 1, trainSize: 500, validationSize: 20_000 }),
    );
    await waitFor(view.id, (v) => v.history.length === 1);
    await jobs.cancel(view.id);
    const final = await waitFor(view.id, (v) => v.finishedAt !== null);
    expect(final.state).toBe('cancelled');
    expect(final.result).toBeNull();
    expect((await store.list()).length).toBe(before);
    expect(existsSync(join(dir, 'checkpoints', view.id))).toBe(false);
  });

  it('when a cancel message is lost (only the flag in Redis says so), then the job still ends cancelled before it publishes', async () => {
    const before = (await store.list()).length;
    const { view } = await jobs.enqueue(trainParamsSchema.parse({ epochs: 1, trainSize: 500 }));
    await waitFor(view.id, (v) => v.state === 'active');
    // What TrainingJobs.cancel stores, without the message on the cancel channel.
    await redis.set(`${prefix}:ending:${view.id}`, 'cancelled', 'EX', 600);
    const final = await waitFor(view.id, (v) => v.finishedAt !== null);
    expect(final.state).toBe('cancelled');
    expect(final.result).toBeNull();
    expect((await store.list()).length).toBe(before);
  });
});
