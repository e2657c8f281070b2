import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/jobs/job-schema.js';
import { DIGIT_CLASSES } from '../../src/ml/data/dataset.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import { trainParamsSchema, type TrainParamsInput } from '../../src/ml/train-params.js';
import { openStores, type StoreAccess, type Stores } from '../../src/store/open-stores.js';
import { S3Objects } from '../../src/store/s3-objects.js';
import { startTrainingWorker } from '../../src/worker/training-worker.js';
import { mnistDigits, TEST_LIMITS } from '../datasets/dataset-fixtures.js';
import { exited } from '../helpers/processes.js';
import { REDIS_URL } from '../helpers/redis.js';
import { S3_CREDENTIALS, S3Server } from '../helpers/s3-server.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { untilJob, useTrainingJobs } from '../helpers/training-jobs.js';

/** Short, so that a killed worker's job is picked up again soon. */
const LOCK_MS = 1500;

describe('training workers on the S3 store', () => {
  const { redis, prefix, jobs } = useTrainingJobs('s3-training');
  const dir = useTempDir('s3-training');
  const storePrefix = `${prefix}/`;
  let server: S3Server;
  let access: StoreAccess;
  let stores: Stores;
  let objects: S3Objects;
  let worker: Awaited<ReturnType<typeof startTrainingWorker>> | undefined;
  const children: ChildProcess[] = [];

  /** An in-process worker on the S3 store; its training thread finds the credentials in the environment. */
  const startWorker = () =>
    startTrainingWorker({
      connection: redis,
      prefix,
      store: access,
      logger: pino({ level: 'silent' }),
      backend: 'wasm',
      jobs,
      lockDuration: LOCK_MS,
      stalledInterval: LOCK_MS,
    });

  /** A worker process, as `npm run start:worker` starts it with STORE_URL=s3://... */
  function startWorkerProcess(): ChildProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker/main.ts'], {
      env: {
        ...process.env,
        ...server.env(storePrefix),
        REDIS_URL,
        REDIS_PREFIX: prefix,
        STORE_CACHE_DIR: join(dir, 'process-cache'),
        TF_BACKEND: 'wasm',
        WORKER_LOCK_MS: String(LOCK_MS),
        TRAINING_THREADS: '1',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(child);
    return child;
  }

  const waitFor = (id: string, done: (view: JobView) => boolean) => untilJob(jobs, id, done, 150_000);
  const finished = async (input: TrainParamsInput): Promise<JobView> => {
    const { view } = await jobs.enqueue(trainParamsSchema.parse(input));
    return waitFor(view.id, (v) => v.finishedAt !== null);
  };

  beforeAll(async () => {
    process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
    server = await S3Server.start(join(dir, 's3'));
    const location = server.location(storePrefix, join(dir, 'cache'));
    access = { location, redis: { url: REDIS_URL, prefix } };
    stores = openStores(access, { credentials: S3_CREDENTIALS });
    objects = S3Objects.open(location, { credentials: S3_CREDENTIALS });
    worker = await startWorker();
  });
  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.kill('SIGKILL');
      await exited(child);
    }
  });
  afterAll(async () => {
    await worker?.close();
    objects?.close();
    await stores?.close();
    await server?.stop();
  });

  it('when a job trains on a dataset uploaded to the S3 store, then it publishes to the S3 model store with its classes', async () => {
    // 150 digits each of 2, 4 and 9 as a CSV, uploaded as the API would.
    const header = ['label', ...Array.from({ length: IMAGE_PIXELS }, (_, i) => `pixel${i}`)].join(',');
    const rows: string[] = [];
    for (const label of [2, 4, 9])
      for (const pixels of await mnistDigits(label, 150)) rows.push([label, ...pixels].join(','));
    const record = await stores.datasets.ingest(
      Readable.from([`${header}\n${rows.join('\n')}\n`]),
      { name: 'two four nine', contentType: 'text/csv' },
      TEST_LIMITS,
    );

    const final = await finished({ dataset: record.id, epochs: 1 });
    expect(final.state).toBe('completed');
    const metadata = (await stores.models.get(final.result!.modelVersion))!;
    expect(metadata).toMatchObject({ jobId: final.id, classes: ['2', '4', '9'] });
    // Trained from the worker's local copy of the dataset; its checkpoints are gone.
    expect(existsSync(join(dir, 'cache', 'datasets', record.id, 'dataset.json'))).toBe(true);
    expect(await objects.list(`checkpoints/${final.id}/`)).toEqual([]);
  });

  it('when a job trains on MNIST, then its version is in the S3 model store and loads', async () => {
    const final = await finished({ epochs: 1, trainSize: 1000, validationSize: 200 });
    expect(final.state).toBe('completed');
    const version = final.result!.modelVersion;
    expect((await stores.models.get(version))!.classes).toEqual(DIGIT_CLASSES);
    const model = await stores.models.load(version);
    model.dispose();
  });

  it(
    'when a worker process is SIGKILLed during epoch 2, then another resumes from the epoch-1 checkpoint in S3 and one version results',
    { timeout: 180_000 },
    async () => {
      // Only the process may take the job until it is killed.
      await worker!.close();
      worker = undefined;
      const before = (await stores.models.list()).length;
      const first = startWorkerProcess();
      const { view } = await jobs.enqueue(
        trainParamsSchema.parse({ epochs: 3, trainSize: 8000, validationSize: 500 }),
      );
      const midEpoch2 = await waitFor(
        view.id,
        (v) => v.history.length === 1 && (v.progress?.epoch ?? 0) === 2 && (v.progress?.batch ?? 0) > 5,
      );
      first.kill('SIGKILL');
      await exited(first);
      expect(await objects.get(`checkpoints/${view.id}/latest.json`)).not.toBeNull();

      worker = await startWorker();
      const final = await waitFor(view.id, (v) => v.finishedAt !== null);
      expect(final.state).toBe('completed');
      expect(final.attempts).toBeGreaterThanOrEqual(2);
      expect(final.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
      // Resumed, not restarted: epoch 1 is the record the killed worker wrote.
      expect(final.history[0]).toEqual(midEpoch2.history[0]);
      const versions = await stores.models.list();
      expect(versions.length - before).toBe(1);
      expect(versions.at(-1)).toMatchObject({ jobId: view.id });
      expect(await objects.list(`checkpoints/${view.id}/`)).toEqual([]);
    },
  );
});
