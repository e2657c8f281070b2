import { createHash, randomUUID } from 'node:crypto';
import { Job, Queue, type JobType } from 'bullmq';
import type { Redis } from 'ioredis';
import type { TrainParams } from '../ml/train-params.js';
import {
  jobProgressSchema,
  jobResultSchema,
  TRAINING_QUEUE,
  type JobData,
  type JobResult,
  type JobState,
  type JobView,
} from './job-schema.js';
import { JobEndings } from './job-endings.js';

/** The reason a cancelled job fails with, so its view can say `cancelled` rather than `failed`. */
export const CANCELLED_REASON = 'cancelled on request';

/** Longest a request waits for another one with the same Idempotency-Key to create its job. */
const IDEMPOTENCY_LOCK_MS = 10_000;

export class JobConflictError extends Error {
  override name = 'JobConflictError';
}

export interface TrainingJobsOptions {
  connection: Redis;
  prefix: string;
  /** Attempts per job (crashes and lost workers count); @default 3 */
  attempts?: number;
  /** Finished jobs kept: @default { count: 1000, ageSeconds: 7 days } */
  retention?: { count: number; ageSeconds: number };
  /** Redis connection trouble of the queue (ioredis reconnects meanwhile); @default ignored */
  onError?: (error: Error) => void;
}

const STATES_OF: Record<JobState, JobType[]> = {
  queued: ['waiting', 'delayed', 'prioritized'],
  active: ['active'],
  completed: ['completed'],
  failed: ['failed'],
  cancelled: ['failed', 'waiting', 'delayed', 'prioritized'],
};

/**
 * The training-job contract over BullMQ, shared by the API (enqueue, read, cancel) and the worker
 * (cancel flags). Jobs and their progress live in Redis, so they outlive any API or worker process.
 */
export class TrainingJobs {
  readonly queue: Queue<JobData, JobResult>;
  private readonly redis: Redis;
  private readonly prefix: string;
  readonly endings: JobEndings;

  constructor(private readonly options: TrainingJobsOptions) {
    this.redis = options.connection;
    this.prefix = options.prefix;
    const retention = options.retention ?? { count: 1000, ageSeconds: 7 * 24 * 3600 };
    this.endings = new JobEndings(this.redis, this.prefix, retention.ageSeconds + 3600);
    const keep = { count: retention.count, age: retention.ageSeconds };
    this.queue = new Queue<JobData, JobResult>(TRAINING_QUEUE, {
      connection: options.connection,
      prefix: options.prefix,
      defaultJobOptions: {
        attempts: options.attempts ?? 3,
        backoff: { type: 'exponential', delay: 2000 },
        removeOnComplete: keep,
        removeOnFail: keep,
      },
    });
    this.queue.on('error', options.onError ?? (() => undefined));
  }

  /**
   * Queues a training job. The same idempotency key returns the job it first created (while that
   * job is retained); reusing a key with other parameters is a conflict, as with HTTP APIs that
   * take such keys. Requests with one key that arrive together are put in line by a short lock in
   * Redis, so exactly one of them creates the job and the others are told about it.
   */
  async enqueue(params: TrainParams, idempotencyKey?: string): Promise<{ view: JobView; created: boolean }> {
    if (!idempotencyKey) {
      const job = await this.queue.add('train', { params }, { jobId: randomUUID() });
      return { view: await this.view(job), created: true };
    }
    const jobId = `k-${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 32)}`;
    const lock = `${this.prefix}:idempotency:${jobId}`;
    const until = Date.now() + IDEMPOTENCY_LOCK_MS;
    for (;;) {
      const existing = await this.existing(jobId, params);
      if (existing) return existing;
      if (await this.redis.set(lock, '1', 'PX', IDEMPOTENCY_LOCK_MS, 'NX')) {
        try {
          // The holder before us may have created it between our look and our lock.
          const created = await this.existing(jobId, params);
          if (created) return created;
          const job = await this.queue.add('train', { params }, { jobId });
          return { view: await this.view(job), created: true };
        } finally {
          await this.redis.del(lock);
        }
      }
      if (Date.now() > until) throw new Error('Idempotency-Key is locked by another request for too long');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  private async existing(
    jobId: string,
    params: TrainParams,
  ): Promise<{ view: JobView; created: false } | null> {
    const job = await Job.fromId<JobData, JobResult>(this.queue, jobId);
    if (!job) return null;
    if (JSON.stringify(job.data.params) !== JSON.stringify(params)) {
      throw new JobConflictError('Idempotency-Key was already used for a job with other parameters');
    }
    return { view: await this.view(job), created: false };
  }

  async get(id: string): Promise<JobView | null> {
    const job = await Job.fromId<JobData, JobResult>(this.queue, id);
    return job ? this.view(job) : null;
  }

  /** Newest first. Retention bounds how many jobs exist, so sorting them here stays cheap. */
  async list(options: {
    state?: JobState;
    limit: number;
    offset: number;
  }): Promise<{ jobs: JobView[]; total: number }> {
    const types = options.state ? STATES_OF[options.state] : [...new Set(Object.values(STATES_OF).flat())];
    const jobs = (await this.queue.getJobs(types)) as Job<JobData, JobResult>[];
    const views = await Promise.all(jobs.filter(Boolean).map((job) => this.view(job)));
    const matching = views
      .filter((v) => !options.state || v.state === options.state)
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
    return { jobs: matching.slice(options.offset, options.offset + options.limit), total: matching.length };
  }

  /**
   * Marks a job cancelled and tells the workers: a queued job then never trains, an active one
   * stops within a batch. The mark outlives a missed announcement: the worker checks it too. A job
   * that has already begun to publish its model version can no longer be cancelled.
   */
  async cancel(id: string): Promise<JobView | null> {
    const job = await Job.fromId<JobData, JobResult>(this.queue, id);
    if (!job) return null;
    const before = await this.view(job);
    if (before.state !== 'queued' && before.state !== 'active') {
      throw new JobConflictError(
        `job ${id} is already ${before.state}; only queued or active jobs can be cancelled`,
      );
    }
    if ((await this.endings.claim(id, 'cancelled')) === 'publishing') {
      throw new JobConflictError(
        `job ${id} has finished training and is publishing its model version; it can no longer be cancelled`,
      );
    }
    await this.redis.publish(cancelChannel(this.prefix), id);
    return this.view(job);
  }

  /** Retained jobs by state, for metrics. `failed` includes cancelled jobs (told apart per job only). */
  async counts(): Promise<Record<'queued' | 'active' | 'completed' | 'failed', number>> {
    const c = await this.queue.getJobCounts(
      'waiting',
      'delayed',
      'prioritized',
      'active',
      'completed',
      'failed',
    );
    return {
      queued: (c.waiting ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0),
      active: c.active ?? 0,
      completed: c.completed ?? 0,
      failed: c.failed ?? 0,
    };
  }

  /** Training speed of each running job, from its last progress report. */
  async trainingSpeeds(): Promise<number[]> {
    const active = await this.queue.getActive();
    return active
      .map((job) => jobProgressSchema.safeParse(job.progress))
      .flatMap((p) => (p.success ? [p.data.imagesPerSecond] : []));
  }

  /** Redis answers (readiness). */
  async ping(): Promise<void> {
    await this.redis.ping();
  }

  isCancelRequested(id: string): Promise<boolean> {
    return this.endings.read(id).then((ending) => ending === 'cancelled');
  }

  async close(): Promise<void> {
    await this.queue.close();
  }

  private async view(read: Job<JobData, JobResult>): Promise<JobView> {
    const raw = await read.getState();
    // Finished since it was read: read it again, or a final state would come without its result.
    const job =
      (raw === 'completed' || raw === 'failed') && !read.finishedOn
        ? ((await Job.fromId<JobData, JobResult>(this.queue, read.id!)) ?? read)
        : read;
    const cancelRequested = await this.isCancelRequested(job.id!);
    const progress = jobProgressSchema.safeParse(job.progress);
    const result = jobResultSchema.safeParse(job.returnvalue);
    const { history = [], ...current } = progress.success ? progress.data : {};
    return {
      id: job.id!,
      state: stateOf(raw, job.failedReason, cancelRequested),
      params: job.data.params,
      createdAt: new Date(job.timestamp).toISOString(),
      startedAt: job.processedOn ? new Date(job.processedOn).toISOString() : null,
      finishedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
      attempts: job.attemptsStarted ?? job.attemptsMade,
      progress: progress.success ? (current as JobView['progress']) : null,
      history,
      result: result.success ? result.data : null,
      error:
        raw === 'failed' && job.failedReason !== CANCELLED_REASON
          ? job.failedReason || 'unknown error'
          : null,
    };
  }
}

export function cancelChannel(prefix: string): string {
  return `${prefix}:cancel`;
}

function stateOf(raw: string, failedReason: string | undefined, cancelRequested: boolean): JobState {
  switch (raw) {
    case 'active':
      // Cancelled on request: it stops within a batch, and shows as what it is about to be.
      return cancelRequested ? 'cancelled' : 'active';
    case 'completed':
      return 'completed';
    case 'failed':
      return failedReason === CANCELLED_REASON || cancelRequested ? 'cancelled' : 'failed';
    default:
      return cancelRequested ? 'cancelled' : 'queued';
  }
}
