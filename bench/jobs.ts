/**
 * The job path's cost: time from POST /jobs to the first progress event, and the whole queued
 * job (API -> Redis -> worker thread -> model store) against calling the trainer directly with
 * the same parameters, as a ratio measured in one run. Needs Redis at REDIS_URL. Prints JSON.
 *
 *   npm run bench:jobs -- [--epochs 1] [--train-size 10000] [--runs 3]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pino from 'pino';
import { buildApp } from '../src/api/app.js';
import { JobEvents } from '../src/jobs/job-events.js';
import type { JobView } from '../src/jobs/job-schema.js';
import { TrainingJobs } from '../src/jobs/training-jobs.js';
import { initBackend } from '../src/ml/backend/index.js';
import { runTraining } from '../src/ml/run-training.js';
import { trainParamsSchema } from '../src/ml/train-params.js';
import { startTrainingWorker } from '../src/worker/training-worker.js';
import { printReport } from './report.js';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '1' },
    'train-size': { type: 'string', default: '10000' },
    runs: { type: 'string', default: '3' },
  },
});
const body = { epochs: Number(args.epochs), trainSize: Number(args['train-size']), validationSize: 1000 };
const params = trainParamsSchema.parse(body);
const runs = Number(args.runs);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const prefix = `bench-jobs-${process.pid}`;
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const dir = await mkdtemp(join(tmpdir(), 'bench-jobs-'));
const jobs = new TrainingJobs({ connection: redis, prefix });
const jobEvents = new JobEvents(redis, prefix);
await jobEvents.ready();
const app = await buildApp({ jobs, jobEvents });
const worker = await startTrainingWorker({
  connection: redis,
  prefix,
  modelDir: join(dir, 'models'),
  checkpointDir: join(dir, 'checkpoints'),
  logger: pino({ level: 'warn' }),
  backend: 'wasm',
});
const backend = await initBackend('wasm');

const direct: number[] = [];
const queued: number[] = [];
const firstProgress: number[] = [];
try {
  for (let run = 0; run < runs; run++) {
    let started = performance.now();
    const { model } = await runTraining(params, { backend });
    direct.push((performance.now() - started) / 1000);
    model.dispose();

    started = performance.now();
    const res = await app.inject({ method: 'POST', url: '/jobs', payload: body });
    const id = (res.json() as JobView).id;
    await new Promise<void>((resolve) => {
      let sawProgress = false;
      const stop = jobEvents.watch(id, (event) => {
        if (event.type === 'progress' && !sawProgress) {
          sawProgress = true;
          firstProgress.push((performance.now() - started) / 1000);
        }
        if (event.type !== 'progress') {
          queued.push((performance.now() - started) / 1000);
          stop();
          resolve();
        }
      });
    });
  }
} finally {
  await worker.close();
  await app.close();
  await jobEvents.close();
  await jobs.close();
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
  await rm(dir, { recursive: true, force: true });
}

printReport('jobs', {
  params: body,
  runs,
  secondsToFirstProgress: { median: median(firstProgress), all: firstProgress },
  directSeconds: { median: median(direct), all: direct },
  queuedSeconds: { median: median(queued), all: queued },
  ratio: { queuedOverDirect: median(queued) / median(direct) },
});
