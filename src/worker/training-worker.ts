import path from 'node:path';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { configDefaults } from '../config.js';
import { subscribeCancels } from '../jobs/cancel-channel.js';
import { clientFailure } from '../jobs/job-failure.js';
import { jobDataSchema, TRAINING_QUEUE, type JobData, type JobResult } from '../jobs/job-schema.js';
import { CANCELLED_REASON, TrainingJobs } from '../jobs/training-jobs.js';
import type { BackendName } from '../ml/backend/index.js';
import type { TrainParams } from '../ml/train-params.js';
import { publishVersion } from '../registry/announcer.js';
import { cleanLeftovers } from '../registry/store-cleanup.js';
import { openStores, type StoreAccess } from '../store/open-stores.js';
import type { Checkpoints } from './checkpoints.js';
import { TrainingRun, type TrainingRunContext } from './training-run.js';

export interface TrainingWorkerOptions {
  connection: Redis;
  prefix: string;
  /**
   * The store jobs read datasets and checkpoints from and publish to.
   * @default a directory store of `modelDir`, `checkpointDir` and `datasetDir`
   */
  store?: StoreAccess;
  modelDir?: string;
  checkpointDir?: string;
  /**
   * With no `store`: jobs on an uploaded dataset's id train on `<datasetDir>/<id>`.
   * @default none: such jobs fail, saying no dataset store was given
   */
  datasetDir?: string;
  logger: Logger;
  /** Jobs trained at once by this process; @default configDefaults.WORKER_CONCURRENCY (training is CPU-bound) */
  concurrency?: number;
  /** Threads each job trains on, data-parallel (src/ml/parallel); @default 1 */
  threads?: number;
  backend?: BackendName;
  /**
   * BullMQ lock settings; shorter values make a crashed worker's job move on sooner.
   * @default configDefaults.WORKER_LOCK_MS, both
   */
  lockDuration?: number;
  stalledInterval?: number;
  /** Times a job may be recovered after its worker died before it fails; @default configDefaults.JOB_ATTEMPTS */
  maxStalledCount?: number;
  /**
   * On close, how long a running job may go on to finish its epoch (and save it) before it stops
   * mid-epoch; either way it goes back to the queue for another worker.
   * @default configDefaults.WORKER_SHUTDOWN_GRACE_MS
   */
  shutdownGraceMs?: number;
  /**
   * Longest a job may train, counted over all its attempts (finished epochs of earlier ones
   * included); past it the job stops and fails for good. @default none
   */
  jobMaxSeconds?: number;
  /**
   * The job contract it reads cancels and claims endings through (a caller may share its own);
   * @default one of its own on `connection` and `prefix`, closed with the worker
   */
  jobs?: TrainingJobs;
}

/**
 * A BullMQ worker for the training queue. Each job trains in a TrainingRun, on its own worker
 * thread; cancellation arrives through the job's AbortSignal, fed by the cancel channel
 * (src/jobs/cancel-channel.ts).
 */
export async function startTrainingWorker(
  options: TrainingWorkerOptions,
): Promise<{ worker: Worker; close(): Promise<void> }> {
  const { logger } = options;
  const access = storeAccess(options);
  const stores = openStores(access);
  await cleanLeftovers(stores.models, logger);
  // On S3 this is also where a worker's own local copies and checkpoint scratch are left by a crash.
  await cleanLeftovers(stores.datasets, logger, 'the dataset store');
  const jobs = options.jobs ?? new TrainingJobs({ connection: options.connection, prefix: options.prefix });
  const context = runContext(options, access, jobs);
  // Declared before the worker exists: it may start a waiting job before this function returns.
  // Runs training right now, so close() can ask each to stop and hand its job back.
  const runs = new Set<TrainingRun>();
  let closing = false;
  const worker = new Worker<JobData, JobResult>(
    TRAINING_QUEUE,
    async (job, token, signal) => {
      if (closing) {
        // Fetched just as we began to shut down: leave it to a worker that is staying.
        await job.moveToWait(token);
        throw new WaitingError();
      }
      const run = new TrainingRun(job, token!, await admittedParams(job, jobs), signal, context);
      runs.add(run);
      try {
        return await run.result();
      } finally {
        runs.delete(run);
      }
    },
    {
      connection: options.connection.duplicate({ maxRetriesPerRequest: null }),
      prefix: options.prefix,
      concurrency: options.concurrency ?? configDefaults.WORKER_CONCURRENCY,
      lockDuration: options.lockDuration ?? configDefaults.WORKER_LOCK_MS,
      stalledInterval: options.stalledInterval ?? configDefaults.WORKER_LOCK_MS,
      maxStalledCount: options.maxStalledCount ?? configDefaults.JOB_ATTEMPTS,
    },
  );
  followWorker(worker, runs, stores.checkpoints(), logger);
  const cancels = await subscribeCancels(
    options.connection,
    options.prefix,
    (jobId) => {
      if (worker.cancelJob(jobId, CANCELLED_REASON)) logger.info({ jobId }, 'cancelling training job');
    },
    {
      onInvalid: (problem) => logger.warn({ problem }, 'dropped a malformed pub/sub message'),
      onError: (err) => logger.warn({ err }, 'cancel channel: Redis connection trouble'),
    },
  );

  async function stop(): Promise<void> {
    closing = true;
    const closed = worker.close();
    for (const run of runs) run.handOver('at epoch end');
    const timer = setTimeout(() => {
      for (const run of runs) run.handOver('now');
    }, options.shutdownGraceMs ?? configDefaults.WORKER_SHUTDOWN_GRACE_MS);
    await closed.finally(() => clearTimeout(timer));
    await cancels.close();
    if (!options.jobs) await jobs.close();
    await stores.close();
  }

  let stopping: Promise<void> | undefined;
  return {
    worker,
    // Once: a second call waits for the first.
    close: () => (stopping ??= stop()),
  };
}

/** The store the options name: `store`, or a directory store of the three directories. */
function storeAccess(options: TrainingWorkerOptions): StoreAccess {
  if (options.store) return options.store;
  if (!options.modelDir || !options.checkpointDir)
    throw new Error('a training worker needs a store, or modelDir and checkpointDir');
  return {
    location: {
      kind: 'file',
      modelDir: options.modelDir,
      checkpointDir: options.checkpointDir,
      // None given: jobs on uploaded datasets find none there, and fail saying so.
      datasetDir: options.datasetDir ?? path.join(options.modelDir, '..', 'no-dataset-store'),
      feedbackDir: path.join(options.modelDir, '..', 'feedback'),
    },
  };
}

function runContext(
  options: TrainingWorkerOptions,
  store: StoreAccess,
  jobs: TrainingJobs,
): TrainingRunContext {
  return {
    store,
    threads: options.threads ?? 1,
    backend: options.backend,
    jobMaxSeconds: options.jobMaxSeconds,
    endings: jobs.endings,
    announce: (version) =>
      publishVersion(options.connection, options.prefix, { version, createdAt: new Date().toISOString() }),
    logger: options.logger,
  };
}

/** The job's parameters, unless it was cancelled while it waited or they are not valid. */
async function admittedParams(job: Job<JobData, JobResult>, jobs: TrainingJobs): Promise<TrainParams> {
  if (await jobs.isCancelRequested(job.id!)) throw new UnrecoverableError(CANCELLED_REASON);
  const parsed = jobDataSchema.safeParse(job.data);
  if (!parsed.success)
    throw new UnrecoverableError(
      clientFailure('invalid_params', `invalid job parameters: ${parsed.error.message}`),
    );
  return parsed.data.params;
}

/** Logs what the worker's jobs come to, and tells runs of the locks BullMQ could not renew. */
function followWorker(
  worker: Worker<JobData, JobResult>,
  runs: ReadonlySet<TrainingRun>,
  checkpoints: Checkpoints,
  logger: Logger,
): void {
  worker.on('error', (error) => logger.error({ err: error }, 'training worker error'));
  worker.on('lockRenewalFailed', (jobIds) => {
    for (const run of runs) if (jobIds.includes(run.jobId)) run.loseLock('lock renewal');
  });
  worker.on('failed', (job, error) => {
    logger.warn({ jobId: job?.id, err: error }, 'training job failed');
    // Failed for good (no attempt left, or not worth retrying): its checkpoint will never be used.
    const final =
      job && (error instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1));
    if (final)
      checkpoints
        .remove(job.id!)
        .catch((err: unknown) => logger.warn({ err }, 'could not remove checkpoint'));
  });
  worker.on('completed', (job, result) => {
    logger.info({ jobId: job.id, modelVersion: result.modelVersion }, 'training job completed');
  });
}
