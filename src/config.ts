import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { backendNameSchema } from './ml/backend/index.js';

const intFromEnv = (fallback: number, min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

const boolFromEnv = () =>
  z
    .enum(['true', 'false', '1', '0'], 'must be true or false')
    .default('false')
    .transform((v) => v === 'true' || v === '1');

// proxy-addr's names for address ranges, which Fastify's trustProxy takes besides addresses.
const PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);
const isProxyAddress = (entry: string) => PROXY_RANGES.has(entry) || isIP(entry.split('/')[0]!) !== 0;

/**
 * Every setting, from the environment, validated once at start-up. A bad value stops the
 * process with a message naming the variable.
 */
export const configSchema = z.object({
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: intFromEnv(3000, 0, 65_535),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .default('redis://127.0.0.1:6379'),
  /** Prefix of every Redis key and channel we use, so several deployments can share one Redis. */
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _.:- only')
    .default('digits'),
  MODEL_DIR: z.string().min(1).default('./data/models'),
  /** Where `npm start`'s private Redis (if it starts one) keeps its append-only file. */
  REDIS_DATA_DIR: z.string().min(1).default('./data/redis'),
  /**
   * Training worker processes `npm start` runs beside the API. One, whose job trains on every core:
   * a job alone finishes soonest, and a second one waits rather than oversubscribes the cores
   * (bench/RESULTS.md, "The seed recipe as a job").
   */
  WORKERS: intFromEnv(1, 0, 64),
  CHECKPOINT_DIR: z.string().min(1).default('./data/checkpoints'),
  /** Directories (comma-separated) whose idx data sets jobs may name by absolute path. */
  DATASET_DIRS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((d) => d.trim())
        .filter(Boolean),
    ),
  /** When set, job and model administration need it (Authorization: Bearer, or X-API-Key). */
  API_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Require API_KEY for /predict too. */
  PREDICT_REQUIRES_KEY: boolFromEnv(),
  /** Require API_KEY for /metrics too (a Prometheus scraper then sends it). */
  METRICS_REQUIRES_KEY: boolFromEnv(),
  /**
   * Start on a HOST other machines can reach without API_KEY, leaving job and model
   * administration open to the network. Without it, the API refuses to start that way.
   */
  ALLOW_UNAUTHENTICATED: boolFromEnv(),
  /**
   * Which proxies in front of the API to believe about the client's address (X-Forwarded-For),
   * so rate limits count per client behind a load balancer: false (default: the socket's
   * address), true (any), a number of hops, or addresses and CIDR ranges, comma-separated.
   */
  TRUST_PROXY: z
    .string()
    .default('false')
    .transform((v, ctx): boolean | number | string[] => {
      if (v === 'false' || v === 'true') return v === 'true';
      if (/^\d+$/.test(v)) return Number(v);
      const entries = v
        .split(',')
        .map((a) => a.trim())
        .filter(Boolean);
      const bad = entries.filter((a) => !isProxyAddress(a));
      if (entries.length === 0 || bad.length > 0)
        ctx.addIssue({
          code: 'custom',
          message: `must be true, false, a number of hops or addresses/CIDR ranges, comma-separated; not ${bad.join(', ') || 'empty'}`,
        });
      return entries;
    }),
  /** Browser origins allowed to call the API, comma-separated; empty = same origin only. */
  CORS_ORIGINS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean),
    ),
  /** Requests per minute per client (shared across replicas through Redis); 0 = no limit. */
  RATE_LIMIT_PER_MINUTE: intFromEnv(600, 0, 1_000_000),
  PREDICT_RATE_LIMIT_PER_MINUTE: intFromEnv(0, 0, 100_000_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TF_BACKEND: backendNameSchema.optional(),
  /** Training jobs one worker process runs at once; training is CPU-bound, its threads share the cores. */
  WORKER_CONCURRENCY: intFromEnv(1, 1, 64),
  /**
   * Threads each training job trains on, data-parallel; 0 = the machine's cores shared out between
   * the jobs that can run on it at once (see trainingThreads). Same seed and thread count, same model.
   */
  TRAINING_THREADS: intFromEnv(0, 0, 64),
  /**
   * How long a worker's claim on a job lasts without renewal, and how often workers look for
   * claims that lapsed: a crashed worker's job moves on to another within about twice this.
   */
  WORKER_LOCK_MS: intFromEnv(30_000, 1000, 600_000),
  /**
   * On SIGTERM, how long the API keeps serving (with /readyz at 503) before it stops accepting
   * connections, so a load balancer can take it out of rotation first. 0 on a laptop; a few
   * seconds behind Kubernetes or any balancer that polls readiness.
   */
  SHUTDOWN_DRAIN_MS: intFromEnv(0, 0, 120_000),
  /**
   * On SIGTERM, how long a worker lets a running job finish its epoch before stopping it
   * mid-epoch; either way the job goes back to the queue and another worker resumes it.
   */
  WORKER_SHUTDOWN_GRACE_MS: intFromEnv(15_000, 0, 600_000),
  /**
   * Most training a job may ask for, as epochs x training images: the seed recipe is 500,000
   * (10 x 50,000). A job over it is refused with a 400, so no client can hold a worker for a day.
   */
  JOB_MAX_IMAGES: intFromEnv(1_500_000, 1, 100_000_000),
  /**
   * Longest a job may train, in seconds, over all its attempts; then it stops and fails saying so.
   * JOB_MAX_IMAGES bounds the work asked for; this bounds the time, whatever the hardware or a
   * slow recipe (batch size 1) makes of it. The largest default job, the wide net with
   * augmentation on 1,500,000 images, takes about 1.5 h here. 0: no limit.
   */
  JOB_MAX_SECONDS: intFromEnv(21_600, 0, 30 * 24 * 3600),
  /** Most jobs waiting for a worker; POST /jobs beyond it gets 429 with Retry-After. */
  JOB_MAX_WAITING: intFromEnv(1000, 1, 1_000_000),
  /** Attempts per job before it fails for good (crashes, lost workers); bad parameters fail at once. */
  JOB_ATTEMPTS: intFromEnv(3, 1, 20),
  /** How often the API checks the model store for a version it missed (e.g. while Redis was away). */
  MODEL_POLL_MS: intFromEnv(10_000, 100, 3_600_000),
  /**
   * Micro-batching of single-image /predict requests: largest batch, and longest wait for one.
   * 0 ms (batch what arrived in the same tick) measured best: 8,280 and 7,861 req/s at full load
   * against 6,929 and 7,684 with 1 ms, and a p50 of 0.8-0.9 ms instead of 2.2-2.5 at 500 req/s
   * (bench/RESULTS.md).
   */
  PREDICT_MAX_BATCH: intFromEnv(64, 1, 1024),
  PREDICT_MAX_DELAY_MS: intFromEnv(0, 0, 1000),
  /** Largest request body: /predict apart, since a batch of images as JSON numbers is a few MB. */
  BODY_LIMIT_BYTES: intFromEnv(1024 * 1024, 1024, 1024 ** 3),
  PREDICT_BODY_LIMIT_BYTES: intFromEnv(16 * 1024 * 1024, 1024, 1024 ** 3),
  /** Most images one /predict request may carry. */
  PREDICT_MAX_IMAGES: intFromEnv(256, 1, 4096),
  /**
   * Most PNG/JPEG images one /predict request may carry: each is decoded, up to a few hundred ms
   * of a core for a large PNG, where a numeric image costs microseconds (issue 12).
   */
  PREDICT_MAX_ENCODED_IMAGES: intFromEnv(16, 1, 4096),
  /**
   * Decodes of images over 512 x 512 running at once in one API process: half the cores, so the
   * rest keep serving. Smaller images (a canvas drawing) have one slot of their own besides.
   */
  PREDICT_DECODE_CONCURRENCY: intFromEnv(Math.max(1, Math.floor(availableParallelism() / 2)), 1, 64),
  /** Decodes waiting for a slot, in arrival order, in each of the two lines; beyond, 503 with Retry-After. */
  PREDICT_DECODE_QUEUE: intFromEnv(32, 0, 100_000),
  /**
   * Longest a client may take to send a whole request, headers and body, before a 408: bounds
   * trickled bodies. A full 16 MiB /predict body needs about 4.5 Mbit/s to make the default.
   */
  HTTP_REQUEST_TIMEOUT_MS: intFromEnv(30_000, 100, 3_600_000),
  /** Longest a client may take to send the request line and headers, before a 408 (at most the above). */
  HTTP_HEADERS_TIMEOUT_MS: intFromEnv(10_000, 100, 3_600_000),
  /**
   * A connection with a request under way and no traffic either way for this long is closed: a
   * client that stopped reading its answer. At least 20 s, so the 15 s heartbeat keeps job event
   * streams open. Between requests Fastify's keep-alive timeout (72 s) applies instead.
   */
  HTTP_IDLE_TIMEOUT_MS: intFromEnv(120_000, 20_000, 3_600_000),
  /** Open connections the API takes; one more is closed as soon as it is accepted. */
  HTTP_MAX_CONNECTIONS: intFromEnv(1000, 1, 1_000_000),
  /**
   * Job event streams (GET /jobs/:id/events) open at once per client address, and in all; then 429.
   * Streams last as long as their job, so keep the total under HTTP_MAX_CONNECTIONS.
   */
  EVENT_STREAMS_PER_CLIENT: intFromEnv(10, 1, 100_000),
  EVENT_STREAMS_MAX: intFromEnv(500, 1, 1_000_000),
  /** Finished jobs kept readable: at most this many, for at most this long. */
  JOB_RETENTION_COUNT: intFromEnv(1000, 1, 1_000_000),
  JOB_RETENTION_HOURS: intFromEnv(24 * 7, 1, 24 * 365),
});

export type Config = z.infer<typeof configSchema>;

/**
 * Every setting at its default: the one place modules that take options find the value to fall
 * back on, so each default is written once, in the schema above.
 */
export const configDefaults: Readonly<Config> = Object.freeze(configSchema.parse({}));

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable (API_KEY= in a compose file) means "not set", as in most tools.
  const given = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = configSchema.safeParse(given);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map(
    (i) => `${String(i.path[0])}: ${i.message} (got ${JSON.stringify(env[String(i.path[0])])})`,
  );
  throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
}

/**
 * Threads per training job: TRAINING_THREADS when set, else the cores shared out between the jobs
 * that can train at once on this machine (`workers` processes of WORKER_CONCURRENCY jobs each),
 * so they never ask for more threads than there are cores.
 */
export function trainingThreads(config: Config, workers = 1, cores = availableParallelism()): number {
  if (config.TRAINING_THREADS > 0) return config.TRAINING_THREADS;
  return Math.max(1, Math.floor(cores / (workers * config.WORKER_CONCURRENCY)));
}

/** Addresses only this machine can reach: a listener on one of them is not on the network. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(bare);
}

/**
 * The API's own start-up check: it must not listen where other machines reach it with job and
 * model administration open, unless told so on purpose; and a switch that asks for the key on
 * more routes means nothing without a key.
 */
export function checkApiExposure(config: Config): void {
  if (!config.API_KEY && !config.ALLOW_UNAUTHENTICATED && !isLoopbackHost(config.HOST)) {
    throw new ConfigError(
      `HOST is ${config.HOST}, which other machines can reach, and API_KEY is not set: anyone on the ` +
        'network could start jobs, delete model versions and move aliases. Set API_KEY (16 or more ' +
        'characters), or set ALLOW_UNAUTHENTICATED=true to run without one on purpose.',
    );
  }
  const needKey = (['PREDICT_REQUIRES_KEY', 'METRICS_REQUIRES_KEY'] as const).filter((name) => config[name]);
  if (!config.API_KEY && needKey.length > 0) {
    throw new ConfigError(`${needKey.join(' and ')} asks for API_KEY, which is not set: set API_KEY`);
  }
}
