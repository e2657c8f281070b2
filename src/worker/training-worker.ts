import type { Worker as Thread } from 'node:worker_threads';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  jobDataSchema,
  jobProgressSchema,
  TRAINING_QUEUE,
  type JobData,
  type JobResult,
} from '../jobs/job-schema.js';
import { clientFailure } from '../jobs/job-failure.js';
import { LOCK_LOST } from '../jobs/job-endings.js';
import { subscribeCancels } from '../jobs/cancel-channel.js';
import { CANCELLED_REASON, TrainingJobs } from '../jobs/training-jobs.js';
import { configDefaults } from '../config.js';
import { errorMessage } from '../fs-durable.js';
import type { BackendName } from '../ml/backend/index.js';
import { publishVersion } from '../registry/announcer.js';
import { ModelStore } from '../registry/model-store.js';
import { cleanLeftovers } from '../registry/store-cleanup.js';
import { siblingModule, startThread } from '../thread-start.js';
import { Checkpoints } from './checkpoints.js';
import type { FromThread, ThreadInput, ToThread } from './thread-messages.js';

export interface TrainingWorkerOptions {
  connection: Redis;
  prefix: string;
  modelDir: string;
  checkpointDir: string;
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

const threadFile = siblingModule(import.meta.url, 'training-thread');

/**
 * A BullMQ worker for the training queue. Each job trains in its own worker thread, so this
 * thread's event loop keeps renewing the job lock; cancellation arrives through the job's
 * AbortSignal, fed by a Redis channel the API publishes on.
 */
export async function startTrainingWorker(
  options: TrainingWorkerOptions,
): Promise<{ worker: Worker; close(): Promise<void> }> {
  const { logger } = options;
  await cleanLeftovers(new ModelStore(options.modelDir), logger);
  const jobs = options.jobs ?? new TrainingJobs({ connection: options.connection, prefix: options.prefix });
  // Declared before the worker exists: it may start a waiting job before this function returns.
  // Threads training right now, so close() can ask each to stop and hand its job back.
  const running = new Set<Thread>();
  // What to do, per job id, when BullMQ says this worker's lock on it could not be renewed.
  const onLockLost = new Map<string, () => void>();
  let closing = false;
  const worker = new Worker<JobData, JobResult>(
    TRAINING_QUEUE,
    (job, token, signal) => processJob(job, token!, signal),
    {
      connection: options.connection.duplicate({ maxRetriesPerRequest: null }),
      prefix: options.prefix,
      concurrency: options.concurrency ?? configDefaults.WORKER_CONCURRENCY,
      lockDuration: options.lockDuration ?? configDefaults.WORKER_LOCK_MS,
      stalledInterval: options.stalledInterval ?? configDefaults.WORKER_LOCK_MS,
      maxStalledCount: options.maxStalledCount ?? configDefaults.JOB_ATTEMPTS,
    },
  );
  worker.on('error', (error) => logger.error({ err: error }, 'training worker error'));
  // BullMQ does not stop a processor whose lock lapsed (the process was paused, or cut off from
  // Redis): another worker may already train the job, so this one must stop and publish nothing.
  worker.on('lockRenewalFailed', (jobIds) => {
    for (const id of jobIds) onLockLost.get(id)?.();
  });
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

  async function processJob(
    job: Job<JobData, JobResult>,
    token: string,
    signal: AbortSignal | undefined,
  ): Promise<JobResult> {
    const log = logger.child({ jobId: job.id });
    if (closing) {
      // Fetched just as we began to shut down: leave it to a worker that is staying.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    if (await jobs.isCancelRequested(job.id!)) throw new UnrecoverableError(CANCELLED_REASON);
    const parsed = jobDataSchema.safeParse(job.data);
    if (!parsed.success)
      throw new UnrecoverableError(
        clientFailure('invalid_params', `invalid job parameters: ${parsed.error.message}`),
      );
    const input: ThreadInput = {
      jobId: job.id!,
      params: parsed.data.params,
      modelDir: options.modelDir,
      checkpointDir: options.checkpointDir,
      threads: options.threads ?? 1,
      ...(options.backend ? { backend: options.backend } : {}),
    };
    const thread = startThread(threadFile, input);
    running.add(thread);
    const cancel = () => thread.postMessage({ type: 'cancel', reason: CANCELLED_REASON } satisfies ToThread);
    const limit = timeLimit(job, options.jobMaxSeconds, () => {
      log.warn({ jobMaxSeconds: options.jobMaxSeconds }, 'training ran out of time; stopping it');
      thread.postMessage({ type: 'cancel', reason: 'time limit' } satisfies ToThread);
    });
    signal?.addEventListener('abort', cancel, { once: true });
    // Cancelled between the flag check above and the listener: the event has already fired.
    if (signal?.aborted) cancel();
    let publishing = false;
    let published = false;
    let lockLost = false;
    let claimFailed: Error | undefined;
    const loseLock = (noticedBy: 'lock renewal' | 'the claim to publish') => {
      if (lockLost) return;
      lockLost = true;
      log.warn(
        { noticedBy },
        'lost the job lock (paused, or cut off from Redis): stopping without publishing',
      );
      // Stops within a batch and keeps the checkpoint, as for a shutdown; nothing is handed back.
      thread.postMessage({ type: 'handover', now: true } satisfies ToThread);
    };
    const lockRenewalFailed = () => loseLock('lock renewal');
    onLockLost.set(job.id!, lockRenewalFailed);
    const answer = (allowed: boolean) => thread.postMessage({ type: 'publish', allowed } satisfies ToThread);
    try {
      return await new Promise<JobResult>((resolve, reject) => {
        let settled = false;
        thread.on('message', (message: FromThread) => {
          switch (message.type) {
            case 'started':
              for (const problem of message.corruptCheckpoints)
                log.warn({ problem }, 'skipped a corrupt checkpoint: resuming from an older one, or afresh');
              log.info(
                { backend: message.backend, resumedFromEpoch: message.resumedFromEpoch },
                'training started',
              );
              break;
            case 'may-publish':
              if (lockLost) {
                answer(false);
                break;
              }
              // Claimed in Redis against a cancel, so the API never accepts one for a job that then
              // completes; and fenced with our lock token (src/jobs/job-endings.ts). Fails closed:
              // an unfenced publication is how one job made two versions. The retry resumes from
              // the last epoch's checkpoint.
              jobs.endings.claimPublishing(job.id!, token).then(
                (claim) => {
                  if (claim === LOCK_LOST) loseLock('the claim to publish');
                  publishing = claim === 'publishing';
                  if (claim === 'cancelled') cancel();
                  answer(publishing);
                },
                (err: unknown) => {
                  claimFailed = new Error(
                    `could not claim the publication, so the job is retried: ${errorMessage(err)}`,
                  );
                  log.warn({ err }, 'could not claim the publication; the job will be retried');
                  answer(false);
                },
              );
              break;
            case 'progress':
              // The job's new holder reports its progress now.
              if (lockLost) break;
              job
                .updateProgress(message.progress)
                .catch((err: unknown) => log.warn({ err }, 'progress update failed'));
              break;
            case 'done':
              settled = true;
              published = true;
              // API processes load the new version when they hear of it (and poll the store too).
              publishVersion(options.connection, options.prefix, {
                version: message.result.modelVersion,
                createdAt: new Date().toISOString(),
              }).catch((err: unknown) => log.warn({ err }, 'could not announce the new model version'));
              resolve(message.result);
              break;
            case 'failed':
              settled = true;
              if (lockLost) {
                // BullMQ's own scripts check the lock too, so this failure is not recorded: the
                // job stays with its new holder.
                log.info('training stopped after losing the job lock; nothing published');
                reject(new Error('lost the job lock to another worker; stopped without publishing'));
              } else if (message.handedOver) {
                // Back to the front of the queue, lock released, no attempt used: the next worker
                // resumes from the checkpoint. WaitingError tells BullMQ the job has been moved.
                log.info('training stopped for a shutdown; job handed back to the queue');
                job.moveToWait(token).then(() => reject(new WaitingError()), reject);
              } else
                reject(claimFailed ?? failure(message, limit.expired() ? options.jobMaxSeconds : undefined));
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
      limit.clear();
      running.delete(thread);
      if (onLockLost.get(job.id!) === lockRenewalFailed) onLockLost.delete(job.id!);
      signal?.removeEventListener('abort', cancel);
      await thread.terminate();
      // The publication failed (a full disk, say): the retry trains again and may be cancelled.
      if (publishing && !published)
        await jobs.endings
          .releasePublishing(job.id!)
          .catch((err: unknown) => log.warn({ err }, 'could not release the publishing claim'));
    }
  }

  let stopping: Promise<void> | undefined;
  return {
    worker,
    // Once: a second call waits for the first.
    close: () => (stopping ??= stop()),
  };

  async function stop(): Promise<void> {
    closing = true;
    const closed = worker.close();
    const graceMs = options.shutdownGraceMs ?? configDefaults.WORKER_SHUTDOWN_GRACE_MS;
    for (const thread of running) thread.postMessage({ type: 'handover', now: false } satisfies ToThread);
    const timer = setTimeout(() => {
      for (const thread of running) thread.postMessage({ type: 'handover', now: true } satisfies ToThread);
    }, graceMs);
    await closed.finally(() => clearTimeout(timer));
    await cancels.close();
    if (!options.jobs) await jobs.close();
  }
}

/**
 * The job's time limit: what is left of `maxSeconds` after the epochs its earlier attempts
 * finished (their seconds are in its progress history), so hand-overs and retries do not reset it.
 */
function timeLimit(
  job: Job<JobData, JobResult>,
  maxSeconds: number | undefined,
  onExpiry: () => void,
): { expired(): boolean; clear(): void } {
  if (!maxSeconds) return { expired: () => false, clear: () => undefined };
  const progress = jobProgressSchema.safeParse(job.progress);
  const spent = progress.success ? progress.data.history.reduce((sum, e) => sum + e.seconds, 0) : 0;
  let expired = false;
  const timer = setTimeout(
    () => {
      expired = true;
      onExpiry();
    },
    Math.max(0, (maxSeconds - spent) * 1000),
  );
  return { expired: () => expired, clear: () => clearTimeout(timer) };
}

/** The error BullMQ records for a thread that failed: cancelled and bad jobs are not retried. */
function failure(message: Extract<FromThread, { type: 'failed' }>, timedOutAfter?: number): Error {
  if (message.cancelled && timedOutAfter !== undefined) {
    return new UnrecoverableError(
      clientFailure(
        'time_limit',
        `training took longer than JOB_MAX_SECONDS (${timedOutAfter} s) and was stopped`,
      ),
    );
  }
  if (message.cancelled) return new UnrecoverableError(CANCELLED_REASON);
  return message.unrecoverable ? new UnrecoverableError(message.message) : new Error(message.message);
}
