import type { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import type { JobView } from '../../src/jobs/job-schema.js';
import { TrainingJobs } from '../../src/jobs/training-jobs.js';
import { useRedisPrefix } from './redis.js';
import { until } from './until.js';

/**
 * The job contract for the calling describe block, on a Redis prefix of its own (`useRedisPrefix`):
 * closed after the block's last test, before the prefix's keys are removed.
 */
export function useTrainingJobs(name: string): { redis: Redis; prefix: string; jobs: TrainingJobs } {
  const { redis, prefix } = useRedisPrefix(name);
  const jobs = new TrainingJobs({ connection: redis, prefix });
  afterAll(() => jobs.close());
  return { redis, prefix, jobs };
}

/** Polls until job `id` is as `done` wants it, and answers its view (the deadline is a safety net only). */
export function untilJob(
  jobs: TrainingJobs,
  id: string,
  done: (view: JobView) => boolean,
  timeoutMs?: number,
): Promise<JobView> {
  return until(
    `job ${id} to get there`,
    async () => {
      const view = await jobs.get(id);
      return view && done(view) ? view : undefined;
    },
    { timeoutMs },
  );
}
