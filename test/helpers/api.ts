import type { Redis } from 'ioredis';
import pino from 'pino';
import { buildApp, type AppOptions } from '../../src/api/app.js';
import { Predictor, type PredictorOptions } from '../../src/api/predictor.js';
import { JobEvents } from '../../src/jobs/job-events.js';
import { TrainingJobs } from '../../src/jobs/training-jobs.js';
import { ModelAliases } from '../../src/registry/model-aliases.js';
import { ModelStore } from '../../src/registry/model-store.js';

export interface TestApi {
  app: Awaited<ReturnType<typeof buildApp>>;
  jobs: TrainingJobs;
  store: ModelStore;
  predictor: Predictor;
  aliases: ModelAliases;
  /** Listens on a free port of 127.0.0.1, for tests that speak raw TCP; answers the port. */
  listen(): Promise<number>;
  close(): Promise<void>;
}

/** The whole API (jobs, predictions, models) on a real Redis and a model store in `modelDir`, ready for HTTP. */
export async function startTestApi(
  redis: Redis,
  prefix: string,
  modelDir: string,
  options: AppOptions & {
    predictor?: Partial<PredictorOptions>;
    /** The connection the aliases use (@default `redis`), for tests that take it away. */
    aliasConnection?: Redis;
    /** The store (@default one in `modelDir`), for tests that hold its calls at a gate. */
    store?: ModelStore;
  } = {},
): Promise<TestApi> {
  const { predictor: predictorOptions, aliasConnection, store: givenStore, ...appOptions } = options;
  const store = givenStore ?? new ModelStore(modelDir);
  const jobs = new TrainingJobs({ connection: redis, prefix });
  const jobEvents = new JobEvents(redis, prefix);
  const predictor = new Predictor({ store, logger: pino({ level: 'silent' }), ...predictorOptions });
  const aliases = new ModelAliases(aliasConnection ?? redis, prefix);
  const app = await buildApp({ jobs, jobEvents, serving: { predictor, store, aliases } }, appOptions);
  await app.ready();
  return {
    app,
    jobs,
    store,
    predictor,
    aliases,
    async listen() {
      await app.listen({ port: 0, host: '127.0.0.1' });
      return (app.server.address() as { port: number }).port;
    },
    async close() {
      predictor.close();
      await app.close();
      await jobEvents.close();
      await jobs.close();
    },
  };
}
