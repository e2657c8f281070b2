import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { buildApp } from '../../src/api/app.js';
import { Predictor } from '../../src/api/predictor.js';
import { ServiceMetrics } from '../../src/api/plugins/metrics.js';
import { DatasetCatalog } from '../../src/datasets/dataset-catalog.js';
import { FileDatasetStore } from '../../src/datasets/file-dataset-store.js';
import { FileFeedbackStore } from '../../src/feedback/file-feedback-store.js';
import { RedisFeedbackEvaluations } from '../../src/feedback/redis-feedback-evaluations.js';
import { JobEvents } from '../../src/jobs/job-events.js';
import { TrainingJobs } from '../../src/jobs/training-jobs.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { ModelAliases } from '../../src/registry/model-aliases.js';

/** What `app.swagger()` answers, as far as the client generator reads it. */
export type OpenApiDocument = Record<string, unknown> & { openapi: string };

/**
 * The OpenAPI document of the whole service, every optional part on (serving, datasets, feedback,
 * metrics, an API key and rate limits), as `/openapi.json` serves it: the app is built in this
 * process the way src/api/server.ts builds it, on `redis` under `prefix`, with empty stores in a
 * temporary directory, and closed again. The job queue writes its meta key under `prefix`: the
 * caller removes it, and owns the connection.
 */
export async function serviceSpec(redis: Redis, prefix: string): Promise<OpenApiDocument> {
  const dir = await mkdtemp(join(tmpdir(), 'service-spec-'));
  const logger = pino({ level: 'silent' });
  const jobs = new TrainingJobs({ connection: redis, prefix });
  const jobEvents = new JobEvents(redis, prefix);
  const store = new FileModelStore(join(dir, 'models'));
  const predictor = new Predictor({ store, logger });
  const feedbackStore = new FileFeedbackStore(join(dir, 'feedback'));
  // Never started: the document does not depend on any figure it would measure.
  const evaluations = new RedisFeedbackEvaluations({
    redis,
    prefix,
    feedback: feedbackStore,
    models: store,
    logger,
    pollMs: 3_600_000,
  });
  try {
    const app = await buildApp(
      {
        jobs,
        jobEvents,
        serving: { predictor, store, aliases: new ModelAliases(redis, prefix) },
        datasets: new DatasetCatalog(new FileDatasetStore(join(dir, 'datasets'))),
        feedback: { store: feedbackStore, evaluations },
      },
      {
        // A key, so the document says which routes want one; never sent anywhere.
        auth: { apiKey: 'client-generator-key-not-a-secret', protectMetrics: true },
        metrics: new ServiceMetrics({}),
        rateLimit: { redis, prefix, perMinute: 600, predictPerMinute: 6000, feedbackPerMinute: 60 },
      },
    );
    try {
      await app.ready();
      return app.swagger() as OpenApiDocument;
    } finally {
      await app.close();
    }
  } finally {
    predictor.close();
    await evaluations.close();
    await jobEvents.close();
    await jobs.close();
    await rm(dir, { recursive: true, force: true });
  }
}
