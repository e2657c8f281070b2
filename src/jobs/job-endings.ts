import type { Redis } from 'ioredis';

/** How a running job ends when a cancel and the job's own publication race: whichever claims first. */
export type Ending = 'cancelled' | 'publishing';

// One key per job, set once: a cancel that lands after the job began publishing is refused rather
// than answered 202 for a job that then completes (and the other way round). Atomic in Redis, so
// API replicas and workers agree without talking to each other.
const CLAIM = `
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
}
