import { Redis } from 'ioredis';
import { loadConfig, trainingThreads } from '../config.js';
import { createLogger } from '../logger.js';
import { runProcess } from '../run-process.js';
import { describeLocation, storeLocation } from '../store/store-location.js';
import { startTrainingWorker } from './training-worker.js';

/** A training worker process: `npm run start:worker`. Its jobs train on TRAINING_THREADS threads. */
runProcess(async () => {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL, 'worker');
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const location = storeLocation(config);
  const { close } = await startTrainingWorker({
    connection: redis,
    prefix: config.REDIS_PREFIX,
    store: { location, redis: { url: config.REDIS_URL, prefix: config.REDIS_PREFIX } },
    concurrency: config.WORKER_CONCURRENCY,
    threads: trainingThreads(config),
    logger,
    maxStalledCount: config.JOB_ATTEMPTS,
    ...(config.TF_BACKEND ? { backend: config.TF_BACKEND } : {}),
    lockDuration: config.WORKER_LOCK_MS,
    stalledInterval: config.WORKER_LOCK_MS,
    shutdownGraceMs: config.WORKER_SHUTDOWN_GRACE_MS,
    jobMaxSeconds: config.JOB_MAX_SECONDS,
  });
  logger.info(
    {
      concurrency: config.WORKER_CONCURRENCY,
      threads: trainingThreads(config),
      store: describeLocation(location),
    },
    'training worker ready',
  );
  return async (signal: string) => {
    logger.info({ signal }, 'stopping: current jobs finish or hand over');
    await close();
    await redis.quit();
  };
});
