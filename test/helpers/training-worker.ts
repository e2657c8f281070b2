import { join } from 'node:path';
import type { Redis } from 'ioredis';
import pino from 'pino';
import type { TrainingWorkerOptions } from '../../src/worker/training-worker.js';

/**
 * What an in-process training worker needs to run on a test's prefix and directory: the wasm
 * backend, the model store in models/, checkpoints in checkpoints/ and the dataset store in
 * datasets/ of `dir`, and a silent logger unless `extra` brings one.
 */
export function workerOptions(
  { redis, prefix, dir }: { redis: Redis; prefix: string; dir: string },
  extra: Partial<TrainingWorkerOptions> = {},
): TrainingWorkerOptions {
  return {
    connection: redis,
    prefix,
    modelDir: join(dir, 'models'),
    checkpointDir: join(dir, 'checkpoints'),
    datasetDir: join(dir, 'datasets'),
    logger: pino({ level: 'silent' }),
    backend: 'wasm',
    ...extra,
  };
}
