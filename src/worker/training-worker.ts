import { Worker as Thread } from 'node:worker_threads';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { jobDataSchema, TRAINING_QUEUE, type JobData, type JobResult } from '../jobs/job-schema.js';
import { CANCELLED_REASON, cancelChannel, TrainingJobs } from '../jobs/training-jobs.js';
import type { BackendName } from '../ml/backend/index.js';
import { publishVersion } from '../registry/announcer.js';
import { Checkpoints } from './checkpoints.js';
import type { FromThread, ThreadInput, ToThread } from './thread-messages.js';

export interface TrainingWorkerOptions {
  connection: Redis;
  prefix: string;
  modelDir: string;
  checkpointDir: string;
  logger: Logger;
  /** Jobs trained at once by this process; @default 1 (training is CPU-bound) */
  concurrency?: number;
  backend?: BackendName;
  /** BullMQ lock settings; shorter values make a crashed worker's job move on sooner. */
  lockDuration?: number;
  stalledInterval?: number;
  /** Times a job may be recovered after its worker died before it fails; @default 3 */
  maxStalledCount?: number;
  /** Least time between two progress updates written to Redis; @default 250 ms */
  progressIntervalMs?: number;
}

const fromSource = import.meta.url.endsWith('.ts');
const threadFile = new URL(`./training-thread${fromSource ? '.ts' : '.js'}`, import.meta.url);

/**
 * Built, the thread is the .js beside us. From source (development, tests), Node 20 does not pass
 * tsx's loader on to worker threads, so the thread registers it before importing the .ts file.
 */
function startThread(input: ThreadInput): Thread {
  if (!fromSource) return new Thread(threadFile, { workerData: input });
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(threadFile.href)}); })`;
  return new Thread(boot, { eval: true, workerData: input });
}

/**
 * A BullMQ worker for the training queue. Each job trains in its own worker thread, so this
 * thread's event loop keeps renewing the job lock; cancellation arrives through the job's
 * AbortSignal, fed by a Redis channel the API publishes on.
 */
export async function startTrainingWorker(
  options: TrainingWorkerOptions,
): Promise<{ worker: Worker; close(): Promise<void> }> {
  const { logger } = options;
  const jobs = new TrainingJobs({ connection: options.connection, prefix: options.prefix });
  const worker = new Worker<JobData, JobResult>(
    TRAINING_QUEUE,
    (job, _token, signal) => processJob(job, signal),
    {
      connection: options.connection.duplicate({ maxRetriesPerRequest: null }),
      prefix: options.prefix,
      concurrency: options.concurrency ?? 1,
      lockDuration: options.lockDuration ?? 30_000,
      stalledInterval: options.stalledInterval ?? 30_000,
      maxStalledCount: options.maxStalledCount ?? 3,
    },
  );
  worker.on('error', (error) => logger.error({ err: error }, 'training worker error'));
  const checkpoints = new Checkpoints(options.checkpointDir);
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

  const subscriber = options.connection.duplicate();
  await subscriber.subscribe(cancelChannel(options.prefix));
  subscriber.on('message', (_channel, jobId: string) => {
    if (worker.cancelJob(jobId, CANCELLED_REASON)) logger.info({ jobId }, 'cancelling training job');
  });

  async function processJob(
    job: Job<JobData, JobResult>,
    signal: AbortSignal | undefined,
  ): Promise<JobResult> {
    const log = logger.child({ jobId: job.id });
    if (await jobs.isCancelRequested(job.id!)) throw new UnrecoverableError(CANCELLED_REASON);
    const parsed = jobDataSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid job parameters: ${parsed.error.message}`);
    const input: ThreadInput = {
      jobId: job.id!,
      params: parsed.data.params,
      modelDir: options.modelDir,
      checkpointDir: options.checkpointDir,
      progressIntervalMs: options.progressIntervalMs ?? 250,
      ...(options.backend ? { backend: options.backend } : {}),
    };
    const thread = startThread(input);
    const cancel = () => thread.postMessage({ type: 'cancel', reason: CANCELLED_REASON } satisfies ToThread);
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      return await new Promise<JobResult>((resolve, reject) => {
        let settled = false;
        thread.on('message', (message: FromThread) => {
          switch (message.type) {
            case 'started':
              log.info(
                { backend: message.backend, resumedFromEpoch: message.resumedFromEpoch },
                'training started',
              );
              break;
            case 'progress':
              job
                .updateProgress(message.progress)
                .catch((err: unknown) => log.warn({ err }, 'progress update failed'));
              break;
            case 'done':
              settled = true;
              // API processes load the new version when they hear of it (and poll the store too).
              publishVersion(options.connection, options.prefix, {
                version: message.result.modelVersion,
                createdAt: new Date().toISOString(),
              }).catch((err: unknown) => log.warn({ err }, 'could not announce the new model version'));
              resolve(message.result);
              break;
            case 'failed':
              settled = true;
              reject(
                message.cancelled
                  ? new UnrecoverableError(CANCELLED_REASON)
                  : message.unrecoverable
                    ? new UnrecoverableError(message.message)
                    : new Error(message.message),
              );
              break;
          }
        });
        thread.on('error', (error) => {
          settled = true;
          reject(error);
        });
        thread.on('exit', (code) => {
          if (!settled) reject(new Error(`training thread exited with code ${code}`));
        });
      });
    } finally {
      signal?.removeEventListener('abort', cancel);
      await thread.terminate();
    }
  }

  return {
    worker,
    async close() {
      await worker.close();
      await subscriber.quit();
      await jobs.close();
    },
  };
}
