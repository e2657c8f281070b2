import { dirname, join } from 'node:path';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { buildApp, type AppDeps, type AppOptions } from '../../src/api/app.js';
import { DatasetCatalog } from '../../src/datasets/dataset-catalog.js';
import { FileDatasetStore } from '../../src/datasets/file-dataset-store.js';
import { Predictor, type PredictorOptions } from '../../src/api/predictor.js';
import { JobEvents } from '../../src/jobs/job-events.js';
import { TrainingJobs } from '../../src/jobs/training-jobs.js';
import { ModelAliases } from '../../src/registry/model-aliases.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { type ModelStore } from '../../src/registry/model-store.js';
import { useRedisPrefix } from './redis.js';
import { useTempDir } from './temp-dir.js';

export interface TestApi {
  app: Awaited<ReturnType<typeof buildApp>>;
  jobs: TrainingJobs;
  jobEvents: JobEvents;
  store: ModelStore;
  /** The built-in datasets and the store of uploads, in datasets/ beside the model store. */
  datasets: DatasetCatalog;
  predictor: Predictor;
  aliases: ModelAliases;
  /** Listens on a free port of 127.0.0.1, for tests that speak raw TCP; answers the port. */
  listen(): Promise<number>;
  close(): Promise<void>;
}

export type TestApiOptions = AppOptions & {
  predictor?: Partial<PredictorOptions>;
  /** The connection the aliases use (@default `redis`), for tests that take it away. */
  aliasConnection?: Redis;
  /** The store (@default one in `modelDir`), for tests that hold its calls at a gate. */
  store?: ModelStore;
  /** The datasets (@default a store in datasets/ beside `modelDir`), for tests that hold its calls. */
  datasets?: DatasetCatalog;
  /** The feedback routes' store and evaluations; @default none (as FEEDBACK=off) */
  feedback?: AppDeps['feedback'];
};

/** The whole API (jobs, predictions, models) on a real Redis and a model store in `modelDir`, ready for HTTP. */
export async function startTestApi(
  redis: Redis,
  prefix: string,
  modelDir: string,
  options: TestApiOptions = {},
): Promise<TestApi> {
  const { predictor: predictorOptions, aliasConnection, store: givenStore, ...rest } = options;
  const { datasets: givenDatasets, feedback, ...appOptions } = rest;
  const store = givenStore ?? new FileModelStore(modelDir);
  const datasets =
    givenDatasets ?? new DatasetCatalog(new FileDatasetStore(join(dirname(modelDir), 'datasets')));
  const jobs = new TrainingJobs({ connection: redis, prefix });
  const jobEvents = new JobEvents(redis, prefix);
  const predictor = new Predictor({ store, logger: pino({ level: 'silent' }), ...predictorOptions });
  const aliases = new ModelAliases(aliasConnection ?? redis, prefix);
  const app = await buildApp(
    { jobs, jobEvents, serving: { predictor, store, aliases }, datasets, ...(feedback ? { feedback } : {}) },
    appOptions,
  );
  await app.ready();
  return {
    app,
    jobs,
    jobEvents,
    store,
    datasets,
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

/** Where the APIs of a describe block run: a connection, a key prefix and a directory of its own. */
export interface TestApiScope {
  redis: Redis;
  prefix: string;
  /** Made before the block's first test; the APIs' model store is models/ in it. */
  dir: string;
}

/**
 * APIs for the calling describe block, on a scope of its own: each that `start` starts is closed
 * after the block's last test, and then the prefix's keys and the directory are removed.
 */
export function useTestApis(
  name: string,
): TestApiScope & { start(options?: TestApiOptions): Promise<TestApi> } {
  const { redis, prefix } = useRedisPrefix(name);
  const dir = useTempDir(name);
  const started: TestApi[] = [];
  afterAll(async () => {
    for (const api of started.splice(0)) await api.close();
  });
  return {
    redis,
    prefix,
    dir,
    async start(options = {}) {
      const api = await startTestApi(redis, prefix, join(dir, 'models'), options);
      started.push(api);
      return api;
    },
  };
}

/**
 * One API for the calling describe block, as `useTestApis` runs them, started before its first
 * test. The handle is filled in then (its scope at once). `options` may be worked out then too,
 * from the scope; with `listen`, the API is on a port as well.
 */
export function useTestApi(
  name: string,
  options: TestApiOptions | ((scope: TestApiScope) => TestApiOptions | Promise<TestApiOptions>) = {},
  { listen = false }: { listen?: boolean } = {},
): TestApi & TestApiScope & { port: number } {
  const { start, ...scope } = useTestApis(name);
  const api = { ...scope } as TestApi & TestApiScope & { port: number };
  beforeAll(async () => {
    Object.assign(api, await start(typeof options === 'function' ? await options(scope) : options));
    if (listen) api.port = await api.listen();
  });
  return api;
}
