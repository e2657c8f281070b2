import type { Worker as Thread } from 'node:worker_threads';
import { UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { LOCK_LOST, type JobEndings } from '../jobs/job-endings.js';
import { clientFailure } from '../jobs/job-failure.js';
import { jobProgressSchema, type JobData, type JobResult } from '../jobs/job-schema.js';
import { CANCELLED_REASON } from '../jobs/training-jobs.js';
import { errorMessage } from '../fs-durable.js';
import type { BackendName } from '../ml/backend/index.js';
import type { TrainParams } from '../ml/train-params.js';
import type { StoreAccess } from '../store/open-stores.js';
import { siblingModule, startThread } from '../thread-start.js';
import type { FromThread, ThreadInput, ToThread } from './thread-messages.js';

/**
 * What a run needs from the worker that started it, and no more (as BullMQ's LockManager takes a
 * small context from its Worker).
 */
export interface TrainingRunContext {
  /** The store the job reads datasets and checkpoints from and publishes to. */
  store: StoreAccess;
  /** Threads the job trains on, data-parallel (src/ml/parallel). */
  threads: number;
  backend?: BackendName;
  /** Longest the job may train, over all its attempts; @default none */
  jobMaxSeconds?: number;
  /** Where the run claims the job's ending before it publishes (src/jobs/job-endings.ts). */
  endings: JobEndings;
  /** Tells the API processes that the run published `version`. */
  announce(version: number): Promise<unknown>;
  logger: Logger;
}

type ThreadFailure = Extract<FromThread, { type: 'failed' }>;

const threadFile = siblingModule(import.meta.url, 'training-thread');

/**
 * One job trained once, in its own worker thread, so the worker's event loop stays free to renew
 * the job lock. It starts the thread, answers its messages, and passes on a cancel (the job's
 * AbortSignal), a shutdown's hand-over, a lost lock and the job's time limit. Call `result()` at
 * once: it settles when the thread is gone.
 */
export class TrainingRun {
  readonly jobId: string;
  private readonly log: Logger;
  private readonly thread: Thread;
  private readonly limit: TimeLimit;
  private readonly outcome: Promise<JobResult>;
  private ended = false;
  private publishing = false;
  private published = false;
  private announced = false;
  private lockLost = false;
  private claimFailed: Error | undefined;

  constructor(
    private readonly job: Job<JobData, JobResult>,
    private readonly token: string,
    params: TrainParams,
    private readonly signal: AbortSignal | undefined,
    private readonly context: TrainingRunContext,
  ) {
    this.jobId = job.id!;
    this.log = context.logger.child({ jobId: job.id });
    const earlier = jobProgressSchema.safeParse(job.progress);
    const input: ThreadInput = {
      jobId: this.jobId,
      params,
      store: context.store,
      threads: context.threads,
      backend: context.backend,
      // A retry or a hand-over resumes the curve with the epochs it resumes.
      batchHistory: earlier.success ? earlier.data.batchHistory : [],
    };
    this.thread = startThread(threadFile, input);
    this.limit = timeLimit(job, context.jobMaxSeconds, () => {
      this.log.warn({ jobMaxSeconds: context.jobMaxSeconds }, 'training ran out of time; stopping it');
      this.send({ type: 'cancel', reason: 'time limit' });
    });
    signal?.addEventListener('abort', this.cancel, { once: true });
    // Cancelled between the worker's check of the flag and the listener: the event has already fired.
    if (signal?.aborted) this.cancel();
    this.outcome = new Promise((resolve, reject) => this.listen(resolve, reject));
  }

  /** API processes load the new version when they hear of it (and poll the store too); once. */
  private announce(version: number): void {
    if (this.announced) return;
    this.announced = true;
    this.context
      .announce(version)
      .catch((err: unknown) => this.log.warn({ err }, 'could not announce the new model version'));
  }

  /** The job's result, or the error BullMQ should record for it. */
  async result(): Promise<JobResult> {
    try {
      return await this.outcome;
    } finally {
      await this.end();
    }
  }

  /**
   * For a shutdown: stop at the end of the current epoch (its checkpoint saved), or `now`, within a
   * batch; the job goes back to the queue.
   */
  handOver(when: 'at epoch end' | 'now'): void {
    if (!this.ended) this.send({ type: 'handover', now: when === 'now' });
  }

  /**
   * BullMQ does not stop a processor whose lock lapsed (the process was paused, or cut off from
   * Redis): another worker may already train the job, so this one must stop and publish nothing.
   */
  loseLock(noticedBy: 'lock renewal' | 'the claim to publish'): void {
    if (this.ended || this.lockLost) return;
    this.lockLost = true;
    this.log.warn(
      { noticedBy },
      'lost the job lock (paused, or cut off from Redis): stopping without publishing',
    );
    // Stops within a batch and keeps the checkpoint, as for a shutdown; nothing is handed back.
    this.send({ type: 'handover', now: true });
  }

  private readonly cancel = () => this.send({ type: 'cancel', reason: CANCELLED_REASON });

  private send(message: ToThread): void {
    this.thread.postMessage(message);
  }

  private listen(resolve: (result: JobResult) => void, reject: (error: unknown) => void): void {
    let settled = false;
    this.thread.on('message', (message: FromThread) => {
      switch (message.type) {
        case 'started':
          for (const problem of message.corruptCheckpoints)
            this.log.warn({ problem }, 'skipped a corrupt checkpoint: resuming from an older one, or afresh');
          this.log.info(
            { backend: message.backend, resumedFromEpoch: message.resumedFromEpoch },
            'training started',
          );
          break;
        case 'may-publish':
          this.answerMayPublish();
          break;
        case 'progress':
          // The job's new holder reports its progress now.
          if (this.lockLost) break;
          this.job
            .updateProgress(message.progress)
            .catch((err: unknown) => this.log.warn({ err }, 'progress update failed'));
          break;
        case 'published':
          this.announce(message.version);
          break;
        case 'done':
          settled = true;
          this.published = true;
          // Announced already, unless this retry found the version published by an earlier attempt.
          this.announce(message.result.modelVersion);
          resolve(message.result);
          break;
        case 'failed':
          settled = true;
          this.stopped(message).catch(reject);
          break;
      }
    });
    this.thread.on('error', (error) => {
      settled = true;
      reject(error);
    });
    this.thread.on('exit', (code) => {
      if (!settled) reject(new Error(`training thread exited with code ${code}`));
    });
  }

  /**
   * Claimed in Redis against a cancel, so the API never accepts one for a job that then completes;
   * and fenced with our lock token (src/jobs/job-endings.ts). Fails closed: an unfenced publication
   * is how one job made two versions. The retry resumes from the last epoch's checkpoint.
   */
  private answerMayPublish(): void {
    const answer = (allowed: boolean) => this.send({ type: 'publish', allowed });
    if (this.lockLost) return answer(false);
    this.context.endings.claimPublishing(this.jobId, this.token).then(
      (claim) => {
        if (claim === LOCK_LOST) this.loseLock('the claim to publish');
        this.publishing = claim === 'publishing';
        if (claim === 'cancelled') this.cancel();
        answer(this.publishing);
      },
      (err: unknown) => {
        this.claimFailed = new Error(
          `could not claim the publication, so the job is retried: ${errorMessage(err)}`,
        );
        this.log.warn({ err }, 'could not claim the publication; the job will be retried');
        answer(false);
      },
    );
  }

  /** The thread stopped without a result: always throws what BullMQ should make of it. */
  private async stopped(message: ThreadFailure): Promise<never> {
    if (this.lockLost) {
      // BullMQ's own scripts check the lock too, so this failure is not recorded: the job stays
      // with its new holder.
      this.log.info('training stopped after losing the job lock; nothing published');
      throw new Error('lost the job lock to another worker; stopped without publishing');
    }
    if (message.handedOver) {
      // Back to the front of the queue, lock released, no attempt used: the next worker resumes
      // from the checkpoint. WaitingError tells BullMQ the job has been moved.
      this.log.info('training stopped for a shutdown; job handed back to the queue');
      await this.job.moveToWait(this.token);
      throw new WaitingError();
    }
    throw this.claimFailed ?? failure(message, this.limit.expired() ? this.context.jobMaxSeconds : undefined);
  }

  private async end(): Promise<void> {
    this.ended = true;
    this.limit.clear();
    this.signal?.removeEventListener('abort', this.cancel);
    await this.thread.terminate();
    // The publication failed (a full disk, say): the retry trains again and may be cancelled.
    if (this.publishing && !this.published)
      await this.context.endings
        .releasePublishing(this.jobId)
        .catch((err: unknown) => this.log.warn({ err }, 'could not release the publishing claim'));
  }
}

interface TimeLimit {
  expired(): boolean;
  clear(): void;
}

/**
 * The job's time limit: what is left of `maxSeconds` after the epochs its earlier attempts
 * finished (their seconds are in its progress history), so hand-overs and retries do not reset it.
 */
function timeLimit(
  job: Job<JobData, JobResult>,
  maxSeconds: number | undefined,
  onExpiry: () => void,
): TimeLimit {
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
function failure(message: ThreadFailure, timedOutAfter?: number): Error {
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
