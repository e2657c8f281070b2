import Fastify, { type FastifyServerOptions } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { JobEvents } from '../jobs/job-events.js';
import type { TrainingJobs } from '../jobs/training-jobs.js';
import { registerErrorHandler } from './error-handler.js';
import { jobRoutes } from './routes/jobs.js';

export interface AppDeps {
  jobs: TrainingJobs;
  jobEvents: JobEvents;
}

declare module 'fastify' {
  interface FastifyInstance {
    jobs: TrainingJobs;
    jobEvents: JobEvents;
  }
}

/**
 * The whole HTTP API from its dependencies. Only the server entry point listens; tests build the
 * same app and talk to it over HTTP.
 */
export async function buildApp(
  deps: AppDeps,
  options: { logger?: FastifyServerOptions['loggerInstance'] | boolean; bodyLimit?: number } = {},
) {
  const app = Fastify({
    ...(typeof options.logger === 'object'
      ? { loggerInstance: options.logger }
      : { logger: options.logger ?? false }),
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    requestIdHeader: 'x-request-id',
    genReqId: () => crypto.randomUUID(),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorate('jobs', deps.jobs);
  app.decorate('jobEvents', deps.jobEvents);
  registerErrorHandler(app);
  await app.register(jobRoutes);
  return app;
}
