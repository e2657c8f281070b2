import type { Redis } from 'ioredis';
import { onTestFinished } from 'vitest';
import { buildApp, type AppOptions } from '../../src/api/app.js';
import { JobEvents } from '../../src/jobs/job-events.js';
import { TrainingJobs, type TrainingJobsOptions } from '../../src/jobs/training-jobs.js';
import { connect, removePrefix, uniquePrefix } from './redis.js';

/**
 * The jobs API alone (no training worker, no model serving), on a prefix and Redis connection of
 * its own, closed and removed after the test that made it.
 */
export async function startJobsApi(
  options: Partial<TrainingJobsOptions> = {},
  appOptions: AppOptions = {},
): Promise<{ app: Awaited<ReturnType<typeof buildApp>>; jobs: TrainingJobs; prefix: string; redis: Redis }> {
  const prefix = uniquePrefix('jobs-api');
  const redis = connect();
  const jobs = new TrainingJobs({ connection: redis, prefix, ...options });
  const jobEvents = new JobEvents(redis, prefix);
  const app = await buildApp({ jobs, jobEvents }, appOptions);
  onTestFinished(async () => {
    await app.close();
    await jobEvents.close();
    await jobs.close();
    await removePrefix(redis, prefix);
    await redis.quit();
  });
  await app.ready();
  return { app, jobs, prefix, redis };
}

/** Polls until every job has finished (the deadline is a safety net only). */
export async function untilFinished(jobs: TrainingJobs, ids: string[]): Promise<void> {
  const until = Date.now() + 30_000;
  for (;;) {
    const views = await Promise.all(ids.map((id) => jobs.get(id)));
    if (views.every((v) => v?.finishedAt)) return;
    if (Date.now() > until)
      throw new Error(`jobs did not finish: ${JSON.stringify(views.map((v) => v?.state))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
