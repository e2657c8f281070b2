import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { checkApiExposure, isLoopbackHost, loadConfig, type Config } from '../config.js';
import { JobEvents } from '../jobs/job-events.js';
import { jobRetention, TrainingJobs } from '../jobs/training-jobs.js';
import { createLogger } from '../logger.js';
import { initBackend } from '../ml/backend/index.js';
import { runProcess } from '../run-process.js';
import { ModelAliases } from '../registry/model-aliases.js';
import { DatasetCatalog } from '../datasets/dataset-catalog.js';
import { datasetLimits } from '../datasets/dataset-limits.js';
import { RedisFeedbackEvaluations } from '../feedback/redis-feedback-evaluations.js';
import { cleanLeftovers } from '../registry/store-cleanup.js';
import { openStores, type Stores } from '../store/open-stores.js';
import { storeLocation } from '../store/store-location.js';
import { buildApp } from './app.js';
import { ImageDecoder } from './image-decoder.js';
import { ServiceMetrics } from './plugins/metrics.js';
import { Predictor } from './predictor.js';
import { followRegistry } from './registry-updates.js';

type Connections = ReturnType<typeof connect>;
type Services = Awaited<ReturnType<typeof buildServices>>;
type App = Awaited<ReturnType<typeof buildApp>>;
type Parts = Connections & Services & { app: App };

/** The API process: `npm run start:api`. The only place that listens on a port. */
runProcess(async () => {
  const config = loadConfig();
  checkApiExposure(config);
  const logger = createLogger(config.LOG_LEVEL, 'api');
  const connections = connect(config, logger);
  const services = await buildServices(config, logger, connections);
  let shuttingDown = false;
  const app = await buildApiApp(config, logger, { ...connections, ...services }, () => shuttingDown);
  await listen(config, logger, app);
  return async (signal: string) => {
    shuttingDown = true;
    await shutdown(config, logger, { app, ...connections, ...services }, signal);
  };
});

/** The Redis connection the whole process shares, and the job queue and job events over it. */
function connect(config: Config, logger: Logger) {
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const jobs = new TrainingJobs({
    connection: redis,
    prefix: config.REDIS_PREFIX,
    attempts: config.JOB_ATTEMPTS,
    maxWaiting: config.JOB_MAX_WAITING,
    retention: jobRetention(config),
    onError: (err) => logger.warn({ err }, 'job queue: Redis connection trouble'),
  });
  const jobEvents = new JobEvents(redis, config.REDIS_PREFIX, {
    onError: (err) => logger.warn({ err }, 'job event stream: Redis connection trouble'),
    onInvalid: (problem) => logger.warn({ problem }, 'dropped a malformed job event'),
  });
  return { redis, jobs, jobEvents };
}

/** The model store and what serves from it, loaded with the latest version and following the registry. */
async function buildServices(config: Config, logger: Logger, { redis, jobs }: Connections) {
  const backend = await initBackend(config.TF_BACKEND);
  logger.info(
    { backend: backend.name, reason: backend.reason, skipped: backend.skipped },
    'TensorFlow.js backend',
  );
  const stores = openStores({
    location: storeLocation(config),
    redis: { url: config.REDIS_URL, prefix: config.REDIS_PREFIX },
  });
  logger.info({ store: stores.description }, 'store');
  const store = stores.models;
  await cleanLeftovers(store, logger);
  // Only the API writes datasets, so it alone cleans up after uploads that crashed.
  await cleanLeftovers(stores.datasets, logger, 'the dataset store');
  const datasets = new DatasetCatalog(stores.datasets);
  const feedback = config.FEEDBACK === 'on' ? await openFeedback(config, logger, redis, stores) : undefined;
  const metrics = new ServiceMetrics({
    jobCounts: () => jobs.counts(),
    trainingSpeeds: () => jobs.trainingSpeeds(),
  });
  const predictor = new Predictor({
    store,
    logger,
    observe: metrics.predictorObserver,
    maxBatch: config.PREDICT_MAX_BATCH,
    maxDelayMs: config.PREDICT_MAX_DELAY_MS,
  });
  await predictor.refresh();
  const aliases = new ModelAliases(redis, config.REDIS_PREFIX);
  const updates = await followRegistry({
    redis,
    prefix: config.REDIS_PREFIX,
    predictor,
    aliases,
    logger,
    pollMs: config.MODEL_POLL_MS,
    // A version published or deleted anywhere: measured on the feedback, or its figure dropped.
    ...(feedback ? { onVersionsChanged: () => feedback.evaluations.modelsChanged() } : {}),
  });
  return { stores, store, datasets, feedback, metrics, predictor, aliases, updates };
}

/**
 * The feedback examples and each version's accuracy on them, measured in the background of this
 * process (figures and revision in Redis, shared with the other API processes). The revision is
 * looked at every MODEL_POLL_MS for changes made through another process, as the store is for
 * versions.
 */
async function openFeedback(config: Config, logger: Logger, redis: Redis, stores: Stores) {
  // Only the API writes feedback, so it alone cleans up after adds that crashed.
  await cleanLeftovers(stores.feedback, logger, 'the feedback store');
  const aliases = new ModelAliases(redis, config.REDIS_PREFIX);
  const evaluations = new RedisFeedbackEvaluations({
    redis,
    prefix: config.REDIS_PREFIX,
    feedback: stores.feedback,
    models: stores.models,
    logger,
    pollMs: config.MODEL_POLL_MS,
    // Production's figure matters most, even when it is older than the newest versions.
    pinned: async () => Object.values(await aliases.all()),
  });
  evaluations.start();
  return { store: stores.feedback, evaluations };
}

function buildApiApp(
  config: Config,
  logger: Logger,
  { redis, jobs, jobEvents, store, datasets, feedback, metrics, predictor, aliases }: Connections & Services,
  shuttingDown: () => boolean,
) {
  return buildApp(
    { jobs, jobEvents, serving: { predictor, store, aliases }, datasets, ...(feedback ? { feedback } : {}) },
    {
      logger,
      auth: {
        apiKey: config.API_KEY,
        protectPredict: config.PREDICT_REQUIRES_KEY,
        protectMetrics: config.METRICS_REQUIRES_KEY,
        protectFeedback: config.FEEDBACK_REQUIRES_KEY,
        loopbackHostOnly: !config.API_KEY && isLoopbackHost(config.HOST),
      },
      trustProxy: config.TRUST_PROXY,
      corsOrigins: config.CORS_ORIGINS,
      bodyLimit: config.BODY_LIMIT_BYTES,
      datasetDirs: config.DATASET_DIRS,
      datasetLimits: datasetLimits(config),
      maxJobImages: config.JOB_MAX_IMAGES,
      predictBodyLimit: config.PREDICT_BODY_LIMIT_BYTES,
      predictMaxImages: config.PREDICT_MAX_IMAGES,
      predictMaxEncodedImages: config.PREDICT_MAX_ENCODED_IMAGES,
      feedbackMaxExamples: config.FEEDBACK_MAX_EXAMPLES,
      imageDecoder: new ImageDecoder({
        concurrency: config.PREDICT_DECODE_CONCURRENCY,
        maxWaiting: config.PREDICT_DECODE_QUEUE,
      }),
      connectionLimits: {
        requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
        headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_MS,
        idleTimeoutMs: config.HTTP_IDLE_TIMEOUT_MS,
        maxConnections: config.HTTP_MAX_CONNECTIONS,
      },
      eventStreams: { perClient: config.EVENT_STREAMS_PER_CLIENT, total: config.EVENT_STREAMS_MAX },
      metrics,
      rateLimit: {
        redis,
        prefix: config.REDIS_PREFIX,
        perMinute: config.RATE_LIMIT_PER_MINUTE,
        predictPerMinute: config.PREDICT_RATE_LIMIT_PER_MINUTE,
        feedbackPerMinute: config.FEEDBACK_RATE_LIMIT_PER_MINUTE,
      },
      shuttingDown,
    },
  );
}

async function listen(config: Config, logger: Logger, app: App): Promise<void> {
  if (!config.API_KEY)
    logger.warn('API_KEY is not set: anyone who can reach the API can start jobs and change models');
  await app.listen({ host: config.HOST, port: config.PORT });
}

/**
 * Readiness already answers 503 (the caller set shuttingDown): serve on through the drain time so a
 * load balancer takes us out of rotation, then close the listener, the services and Redis last.
 */
async function shutdown(
  config: Config,
  logger: Logger,
  { app, updates, feedback, predictor, jobEvents, jobs, redis, stores }: Parts,
  signal: string,
): Promise<void> {
  if (config.SHUTDOWN_DRAIN_MS > 0) {
    logger.info({ signal, drainMs: config.SHUTDOWN_DRAIN_MS }, 'stopping: not ready, still serving');
    await new Promise((resolve) => setTimeout(resolve, config.SHUTDOWN_DRAIN_MS));
  }
  logger.info({ signal }, 'stopping: no new connections, finishing requests in flight');
  await app.close();
  await updates.close();
  // Waits for a pass under way to stop (at its next model call) before Redis goes.
  await feedback?.evaluations.close();
  predictor.close();
  await jobEvents.close();
  await jobs.close();
  await stores.close();
  await redis.quit();
}
