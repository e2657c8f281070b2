import { Redis } from 'ioredis';
import { loadConfig } from '../config.js';
import { JobEvents } from '../jobs/job-events.js';
import { TrainingJobs } from '../jobs/training-jobs.js';
import { createLogger } from '../logger.js';
import { runProcess } from '../run-process.js';
import { buildApp } from './app.js';

/** The API process: `npm run start:api`. The only place that listens on a port. */
runProcess(async () => {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL, 'api');
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const jobs = new TrainingJobs({
    connection: redis,
    prefix: config.REDIS_PREFIX,
    attempts: config.JOB_ATTEMPTS,
    retention: { count: config.JOB_RETENTION_COUNT, ageSeconds: config.JOB_RETENTION_HOURS * 3600 },
  });
  const jobEvents = new JobEvents(redis, config.REDIS_PREFIX);
  const app = await buildApp({ jobs, jobEvents }, { logger });
  await app.listen({ host: config.HOST, port: config.PORT });
  return async (signal: string) => {
    logger.info({ signal }, 'stopping: no new connections, finishing requests in flight');
    await app.close();
    await jobEvents.close();
    await jobs.close();
    await redis.quit();
  };
});
