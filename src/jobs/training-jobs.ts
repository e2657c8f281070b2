import { createHash, randomUUID } from 'node:crypto';
import { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { configDefaults, type Config } from '../config.js';
import { DomainError } from '../errors.js';
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
import { publishCancel } from './cancel-channel.js';
import { JobEndings } from './job-endings.js';
import { publicFailure } from './job-failure.js';
import { listJobIds } from './job-listing.js';

/** The reason a cancelled job fails with, so its view can say `cancelled` rather than `failed`. */
export const CANCELLED_REASON = 'cancelled on request';

/** How long one request may hold an Idempotency-Key while it creates its job. */
const IDEMPOTENCY_LOCK_MS = 10_000;

/** The job is not in a state that allows the request, or an Idempotency-Key names other parameters. */
export class JobConflictError extends DomainError<'conflict'> {
  override name = 'JobConflictError';
  constructor(message: string) {
    super(message, { status: 409, code: 'conflict' });
  }
}

/** JOB_MAX_WAITING jobs are waiting already: the client should come back later. */
export class QueueFullError extends DomainError<'queue_full'> {
  override name = 'QueueFullError';
  constructor(message: string) {
    // A guess for Retry-After: training jobs take minutes, so the queue does not drain sooner.
    super(message, { status: 429, code: 'queue_full', retryAfterSeconds: 60 });
  }
}

/** Another request with the same Idempotency-Key is still creating its job. */
export class IdempotencyBusyError extends DomainError<'idempotency_in_progress'> {
  override name = 'IdempotencyBusyError';
  constructor(message: string) {
    super(message, { status: 409, code: 'idempotency_in_progress', retryAfterSeconds: 1 });
  }
}

/** The Redis key that puts requests with one Idempotency-Key in line (held while one creates the job). */
export function idempotencyLockKey(prefix: string, idempotencyKey: string): string {
  return `${prefix}:idempotency:${idempotentJobId(idempotencyKey)}`;
}

const idempotentJobId = (key: string) => `k-${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;

/** How many finished jobs, and for how long, the queue keeps, from the settings. */
export function jobRetention(config: Pick<Config, 'JOB_RETENTION_COUNT' | 'JOB_RETENTION_HOURS'>) {
  return { count: config.JOB_RETENTION_COUNT, ageSeconds: config.JOB_RETENTION_HOURS * 3600 };
}

export interface TrainingJobsOptions {
  connection: Redis;
  prefix: string;
  /** Attempts per job (crashes and lost workers count); @default JOB_ATTEMPTS */
  attempts?: number;
  /** Finished jobs kept; @default JOB_RETENTION_COUNT for JOB_RETENTION_HOURS */
  retention?: { count: number; ageSeconds: number };
  /** Redis connection trouble of the queue (ioredis reconnects meanwhile); @default ignored */
  onError?: (error: Error) => void;
  /** Most jobs waiting for a worker; creating one more throws QueueFullError; @default no limit */
  maxWaiting?: number;
  /** Longest a request waits for another with its Idempotency-Key; @default 10 s (the lock's life) */
  idempotencyWaitMs?: number;
}

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
    const retention = options.retention ?? jobRetention(configDefaults);
    this.endings = new JobEndings(this.redis, this.prefix, retention.ageSeconds + 3600);
    const keep = { count: retention.count, age: retention.ageSeconds };
    this.queue = new Queue<JobData, JobResult>(TRAINING_QUEUE, {
      connection: options.connection,
      prefix: options.prefix,
      defaultJobOptions: {
        attempts: options.attempts ?? configDefaults.JOB_ATTEMPTS,
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
    if (!idempotencyKey) return { view: await this.create(params, randomUUID()), created: true };
    const jobId = idempotentJobId(idempotencyKey);
    const lock = idempotencyLockKey(this.prefix, idempotencyKey);
    const until = Date.now() + (this.options.idempotencyWaitMs ?? IDEMPOTENCY_LOCK_MS);
    for (;;) {
      const existing = await this.existing(jobId, params);
      if (existing) return existing;
      if (await this.redis.set(lock, '1', 'PX', IDEMPOTENCY_LOCK_MS, 'NX')) {
        try {
          // The holder before us may have created it between our look and our lock.
          const created = await this.existing(jobId, params);
          if (created) return created;
          return { view: await this.create(params, jobId), created: true };
        } finally {
          await this.redis.del(lock);
        }
      }
      if (Date.now() > until)
        throw new IdempotencyBusyError(
          'another request with this Idempotency-Key is still creating its job; retry shortly',
        );
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /**
   * Adds a job unless JOB_MAX_WAITING are waiting. Counted, then added: requests arriving together
   * can pass the count together, so the bound may be passed by at most the requests in flight.
   */
  private async create(params: TrainParams, jobId: string): Promise<JobView> {
    const max = this.options.maxWaiting;
    if (max !== undefined) {
      const c = await this.queue.getJobCounts('waiting', 'delayed', 'prioritized');
      const waiting = Object.values(c).reduce((a, b) => a + b, 0);
      if (waiting >= max)
        throw new QueueFullError(
          `${waiting.toLocaleString('en-US')} training jobs are waiting, the most this service ` +
            `queues (JOB_MAX_WAITING=${max}); retry later`,
        );
    }
    return this.view(await this.queue.add('train', { params }, { jobId }));
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

  /** Newest first: one page, picked in Redis (src/jobs/job-listing.ts). */
  async list(options: {
    state?: JobState;
    limit: number;
    offset: number;
  }): Promise<{ jobs: JobView[]; total: number }> {
    const { ids, total } = await listJobIds(
      this.redis,
      this.queue,
      { endingPrefix: this.endings.key(''), cancelReason: CANCELLED_REASON },
      options,
    );
    // A job removed by retention since the page was picked is left out.
    const views = await Promise.all(ids.map((id) => this.get(id)));
    return { jobs: views.filter((v) => v !== null), total };
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
    await publishCancel(this.redis, this.prefix, id);
    return this.view(job);
  }

  /**
   * Queued and active jobs, not cancelled, whose parameters match: what must stay in place while
   * they train (the data set they read, the version they start from).
   */
  async unfinishedJobsWhere(matches: (params: TrainParams) => boolean): Promise<string[]> {
    const jobs = await this.queue.getJobs(['waiting', 'prioritized', 'delayed', 'active']);
    // A job removed meanwhile comes back as undefined.
    const using = jobs.filter((job) => job?.data?.params && matches(job.data.params));
    const cancelled = await Promise.all(using.map((job) => this.isCancelRequested(job.id!)));
    return using.filter((_, i) => !cancelled[i]).map((job) => job.id!);
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
    const { history = [], batchHistory = [], ...current } = progress.success ? progress.data : {};
    const failure =
      raw === 'failed' && job.failedReason !== CANCELLED_REASON
        ? publicFailure(job.failedReason, { id: job.id!, params: job.data.params })
        : null;
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
      batchHistory,
      result: result.success ? result.data : null,
      error: failure?.message ?? null,
      errorCode: failure?.code ?? null,
    };
  }
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
