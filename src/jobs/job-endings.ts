import type { Redis } from 'ioredis';
import { TRAINING_QUEUE } from './job-schema.js';

/** How a running job ends when a cancel and the job's own publication race: whichever claims first. */
export type Ending = 'cancelled' | 'publishing';

/** A publication claim by a worker that no longer holds the job's lock: another worker has the job. */
export const LOCK_LOST = 'lock-lost';
export type PublishingClaim = Ending | typeof LOCK_LOST;

// One key per job, set once: a cancel that lands after the job began publishing is refused rather
// than answered 202 for a job that then completes (and the other way round). Atomic in Redis, so
// API replicas and workers agree without talking to each other. With a second key (the job's
// BullMQ lock) and a token, the claim is fenced: BullMQ lets a worker that lost its lock (paused,
// partitioned) run on, and only the worker whose token still holds the lock may publish.
const CLAIM = `
if #KEYS > 1 and redis.call('GET', KEYS[2]) ~= ARGV[3] then return '${LOCK_LOST}' end
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export class JobEndings {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** Outlives the job's retention, so a retained job keeps showing how it ended. */
    private readonly ttlSeconds: number,
  ) {}

  /** Claims the job's ending; answers the ending that holds, ours or the one claimed before. */
  async claim(jobId: string, ending: Ending): Promise<Ending> {
    return (await this.redis.eval(CLAIM, 1, this.key(jobId), ending, this.ttlSeconds)) as Ending;
  }

  /**
   * The worker's claim to publish, only while `token` (the processor's `job.token`) still holds
   * the job's lock; otherwise nothing is written and the answer is LOCK_LOST.
   */
  async claimPublishing(jobId: string, token: string): Promise<PublishingClaim> {
    return (await this.redis.eval(
      CLAIM,
      2,
      this.key(jobId),
      this.lockKey(jobId),
      'publishing',
      this.ttlSeconds,
      token,
    )) as PublishingClaim;
  }

  /** A publication that failed gives its claim back, so the retry can still be cancelled. */
  async releasePublishing(jobId: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.key(jobId), 'publishing');
  }

  async read(jobId: string): Promise<Ending | null> {
    return (await this.redis.get(this.key(jobId))) as Ending | null;
  }

  key(jobId: string): string {
    return `${this.prefix}:ending:${jobId}`;
  }

  /** Where BullMQ keeps the token of the worker that holds the job (`<prefix>:<queue>:<id>:lock`). */
  lockKey(jobId: string): string {
    return `${this.prefix}:${TRAINING_QUEUE}:${jobId}:lock`;
  }
}
