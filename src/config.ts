import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { backendNameSchema } from './ml/backend/index.js';
import { MAX_CLASSES } from './ml/data/dataset.js';
import { storeLocation, storeUrlProblem } from './store/store-location.js';

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

// The descriptions are the reference for operators: scripts/config-docs.ts renders them, with
// each default and range, into docs/configuration.md.
declare module 'zod' {
  interface GlobalMeta {
    /** The default as docs/configuration.md shows it, where it depends on the machine. */
    shownDefault?: string;
    /**
     * A setting whose value is never echoed, in start-up errors or logs: `value` shown only by its
     * length (a key), `url` shown without the user and password it may carry.
     */
    secret?: 'value' | 'url';
  }
}

/**
 * Every setting, from the environment, validated once at start-up. A bad value stops the
 * process with a message naming the variable.
 */
export const configSchema = z.object({
  // Where the API listens, how processes log, which TensorFlow.js backend they use.
  HOST: z
    .string()
    .min(1)
    .default('127.0.0.1')
    .describe(
      'Address the API listens on (the Docker image sets `0.0.0.0`). On an address other machines ' +
        'can reach, the API needs `API_KEY`, or `ALLOW_UNAUTHENTICATED=true`.',
    ),
  PORT: intFromEnv(3000, 0, 65_535).describe('Port the API listens on.'),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe(
      'pino log level. Logs are JSON lines with request and job ids; on a terminal, outside ' +
        'production, they are printed as readable lines instead.',
    ),
  TF_BACKEND: backendNameSchema
    .optional()
    .describe(
      'TensorFlow.js backend (`node` is tfjs-node, an optional dependency). Unset: the fastest ' +
        'one that starts. A backend named here that cannot start stops the process.',
    ),

  // Redis and the store every process shares.
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .default('redis://127.0.0.1:6379')
    .describe(
      'Redis for queues, job state, announcements, aliases and rate limits; `rediss://` for TLS. ' +
        'A password in it is never shown in errors or logs.',
    )
    .meta({ secret: 'url' }),
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _.:- only')
    .default('digits')
    .describe('Prefix of every Redis key and channel, so several deployments can share one Redis.'),
  REDIS_DATA_DIR: z
    .string()
    .min(1)
    .default('./data/redis')
    .describe("Where `npm start`'s private Redis, if it starts one, keeps its append-only file."),
  STORE_URL: z
    .string()
    .default('./data')
    .superRefine((v, ctx) => {
      const problem = storeUrlProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .describe(
      'Where model versions, uploaded datasets and checkpoints live, shared by every API and ' +
        'worker: a directory (`./data`, `file:///data`) or S3-compatible object storage ' +
        '(`s3://bucket/prefix`: AWS S3, MinIO, Ceph, R2, ...; see the `S3_` settings). ' +
        "Credentials come from the AWS SDK's default chain (`AWS_ACCESS_KEY_ID` and " +
        '`AWS_SECRET_ACCESS_KEY`, a profile, an instance role) and are never logged.',
    )
    .meta({ secret: 'url' }),
  S3_ENDPOINT: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
    .optional()
    .describe(
      "The S3 API's address for a store other than AWS S3 (`http://minio:9000`); unset: AWS's own " +
        'for `S3_REGION`.',
    )
    .meta({ secret: 'url' }),
  S3_REGION: z
    .string()
    .regex(/^[a-z0-9-]{1,64}$/, 'a region name such as us-east-1')
    .default('us-east-1')
    .describe('The S3 region; most S3-compatible servers take any.'),
  S3_FORCE_PATH_STYLE: boolFromEnv().describe(
    'Address buckets as `<endpoint>/<bucket>` instead of `<bucket>.<endpoint>`: MinIO and most ' +
      'self-hosted servers need `true`.',
  ),
  STORE_CACHE_DIR: z
    .string()
    .min(1)
    .default('./data/cache')
    .describe(
      'With an S3 store: where a worker keeps local copies of the datasets it trains on ' +
        '(datasets never change, so a copy stays good).',
    ),
  MODEL_DIR: z.string().min(1).optional().meta({
    description: 'With a directory store: the model versions, if not `<STORE_URL>/models`.',
    shownDefault: '`<STORE_URL>/models`',
  }),
  CHECKPOINT_DIR: z
    .string()
    .min(1)
    .optional()
    .meta({
      description:
        "With a directory store: per-job checkpoints, if not `<STORE_URL>/checkpoints`; a job's " +
        'are removed when it ends.',
      shownDefault: '`<STORE_URL>/checkpoints`',
    }),
  DATASET_DIR: z
    .string()
    .min(1)
    .optional()
    .meta({
      description:
        'With a directory store: the datasets uploaded with `POST /datasets`, if not ' +
        '`<STORE_URL>/datasets`.',
      shownDefault: '`<STORE_URL>/datasets`',
    }),
  DATASET_MAX_BYTES: intFromEnv(256 * 1024 ** 2, 1024, 64 * 1024 ** 3).describe(
    'Largest `POST /datasets` body (a zip or a CSV), 256 MiB by default so a 200 MB upload fits; ' +
      "413 above it. The upload streams to the dataset store's disk, not to memory.",
  ),
  DATASET_MAX_UNCOMPRESSED_BYTES: intFromEnv(1024 ** 3, 1024, 64 * 1024 ** 3).describe(
    'Most bytes the entries of an uploaded zip may inflate to, all together (gzipped idx files ' +
      'inside counted as they inflate); 413 above it. Bounds zip bombs.',
  ),
  DATASET_MAX_FILES: intFromEnv(200_000, 1, 10_000_000).describe(
    'Most entries an uploaded zip may hold, and most images a dataset may have in any format; ' +
      '413 above it.',
  ),
  DATASET_MAX_CLASSES: intFromEnv(100, 2, MAX_CLASSES).describe(
    `Most classes an uploaded dataset may have (labels are one byte, so at most ${MAX_CLASSES}).`,
  ),
  DATASET_DIRS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((d) => d.trim())
        .filter(Boolean),
    )
    .describe(
      "Directories, comma-separated, under which a job's `dataset` may be an absolute path to idx " +
        'files. Without them a job may name only `mnist` and `fashion-mnist`.',
    ),

  // Training workers and the jobs they take.
  WORKERS: intFromEnv(1, 0, 64).describe(
    'Training worker processes `npm start` runs beside the API. One, training each job on every ' +
      'core: a job alone finishes soonest, and a second one waits rather than crowd the cores.',
  ),
  WORKER_CONCURRENCY: intFromEnv(1, 1, 64).describe(
    'Jobs one worker process trains at once. Training is CPU-bound: jobs at once share the cores.',
  ),
  TRAINING_THREADS: intFromEnv(0, 0, 64).describe(
    "Threads each job trains on, data-parallel. 0: the machine's cores shared out between the jobs " +
      'that can run on it at once, so they never ask for more threads than there are cores. The ' +
      'same seed and thread count give the same model.',
  ),
  WORKER_LOCK_MS: intFromEnv(30_000, 1000, 600_000).describe(
    "How long a worker's claim on a job lasts without renewal, and how often workers look for " +
      "claims that lapsed: a crashed worker's job moves on to another within about twice this.",
  ),
  WORKER_SHUTDOWN_GRACE_MS: intFromEnv(15_000, 0, 600_000).describe(
    'On SIGTERM, how long a running job may take to finish its epoch before it stops mid-epoch. ' +
      'Either way the job goes back to the queue and another worker resumes it.',
  ),
  JOB_ATTEMPTS: intFromEnv(3, 1, 20).describe(
    'Attempts per job before it fails for good, crashes and lost workers included. A SIGTERM ' +
      'hand-over does not count; bad parameters fail at once.',
  ),
  JOB_MAX_IMAGES: intFromEnv(1_500_000, 1, 100_000_000).describe(
    'Most training one job may ask for, as epochs x training images (the seed recipe is ' +
      '10 x 50,000). A job over it is refused with a 400, so no client can hold a worker for a day.',
  ),
  JOB_MAX_SECONDS: intFromEnv(21_600, 0, 30 * 24 * 3600).describe(
    'Longest a job may train, in seconds, over all its attempts; then it stops and fails saying so. ' +
      '`JOB_MAX_IMAGES` bounds the work asked for, this the time, whatever the hardware or a slow ' +
      'recipe makes of it. 0: no limit.',
  ),
  JOB_MAX_WAITING: intFromEnv(1000, 1, 1_000_000).describe(
    'Most jobs waiting for a worker; `POST /jobs` beyond it gets 429 with `Retry-After`.',
  ),
  JOB_RETENTION_COUNT: intFromEnv(1000, 1, 1_000_000).describe(
    'Finished jobs kept readable: at most this many (see `JOB_RETENTION_HOURS`).',
  ),
  JOB_RETENTION_HOURS: intFromEnv(24 * 7, 1, 24 * 365).describe(
    'Finished jobs kept readable: for at most this many hours (see `JOB_RETENTION_COUNT`).',
  ),

  // The API: shutdown, the models it serves, /predict.
  SHUTDOWN_DRAIN_MS: intFromEnv(0, 0, 120_000).describe(
    'On SIGTERM, how long the API keeps serving, with `/readyz` at 503, before it stops accepting ' +
      'connections, so a load balancer takes it out of rotation first: 0 on a laptop, a little ' +
      "above the balancer's check interval behind one.",
  ),
  MODEL_POLL_MS: intFromEnv(10_000, 100, 3_600_000).describe(
    'How often the API looks in the model store for a version it was not told of (one announced ' +
      'while Redis was away).',
  ),
  PREDICT_MAX_BATCH: intFromEnv(64, 1, 1024).describe(
    'Micro-batching of single-image `/predict` requests: the largest batch.',
  ),
  PREDICT_MAX_DELAY_MS: intFromEnv(0, 0, 1000).describe(
    'Micro-batching: the longest a request waits for others to batch with. 0: a batch is what ' +
      'arrived in the same tick.',
  ),
  BODY_LIMIT_BYTES: intFromEnv(1024 * 1024, 1024, 1024 ** 3).describe(
    'Largest request body, `/predict` apart; 413 above it.',
  ),
  PREDICT_BODY_LIMIT_BYTES: intFromEnv(16 * 1024 * 1024, 1024, 1024 ** 3).describe(
    'Largest `/predict` body; 413 above it. Larger than the others, since a batch of images as ' +
      'JSON numbers takes a few MB.',
  ),
  PREDICT_MAX_IMAGES: intFromEnv(256, 1, 4096).describe(
    'Most images one `/predict` request may carry (PNG/JPEG ones: `PREDICT_MAX_ENCODED_IMAGES`).',
  ),
  PREDICT_MAX_ENCODED_IMAGES: intFromEnv(16, 1, 4096).describe(
    'Most PNG/JPEG images one `/predict` request may carry: each is decoded, which costs far more ' +
      'than reading an image sent as numbers.',
  ),
  PREDICT_DECODE_CONCURRENCY: intFromEnv(Math.max(1, Math.floor(availableParallelism() / 2)), 1, 64).meta({
    description:
      'Decodes of images over 512 x 512 running at once in one API process, half the cores by ' +
      'default so the rest keep serving. Smaller images (a canvas drawing) have one slot of their ' +
      'own besides.',
    shownDefault: 'half the cores (at least 1)',
  }),
  PREDICT_DECODE_QUEUE: intFromEnv(32, 0, 100_000).describe(
    'Decodes waiting for a slot, in arrival order, in each of the two lines; beyond them ' +
      '`/predict` answers 503 with `Retry-After`.',
  ),

  // Connections: what one client can hold.
  HTTP_REQUEST_TIMEOUT_MS: intFromEnv(30_000, 100, 3_600_000).describe(
    'Longest a client may take to send a whole request, headers and body, before a 408: bounds ' +
      'trickled bodies.',
  ),
  HTTP_HEADERS_TIMEOUT_MS: intFromEnv(10_000, 100, 3_600_000).describe(
    'Longest a client may take to send the request line and headers, before a 408; keep it at ' +
      'most `HTTP_REQUEST_TIMEOUT_MS`.',
  ),
  HTTP_IDLE_TIMEOUT_MS: intFromEnv(120_000, 20_000, 3_600_000).describe(
    'A connection with a request under way and no traffic either way for this long is closed: a ' +
      'client that stopped reading its answer. At least 20 s, so the heartbeat job event streams ' +
      "send every 15 s keeps them open. Between requests, Fastify's keep-alive timeout applies.",
  ),
  HTTP_MAX_CONNECTIONS: intFromEnv(1000, 1, 1_000_000).describe(
    'Open connections the API takes; one more is closed as soon as it is accepted.',
  ),
  EVENT_STREAMS_PER_CLIENT: intFromEnv(10, 1, 100_000).describe(
    'Job event streams (`GET /jobs/:id/events`) open at once per client address; then 429.',
  ),
  EVENT_STREAMS_MAX: intFromEnv(500, 1, 1_000_000).describe(
    'Job event streams open at once in all; then 429. A stream lasts as long as its job, so keep ' +
      'this under `HTTP_MAX_CONNECTIONS`.',
  ),

  // Who may do what, and how much.
  API_KEY: z
    .string()
    .min(16, 'must be at least 16 characters')
    .optional()
    .describe(
      'When set, job and model administration need it, as `Authorization: Bearer <key>` or ' +
        '`X-API-Key: <key>`. Unset, they are open (on loopback only, unless `ALLOW_UNAUTHENTICATED`) ' +
        'and a warning is logged. Never shown in errors or logs.',
    )
    .meta({ secret: 'value' }),
  PREDICT_REQUIRES_KEY: boolFromEnv().describe('Require `API_KEY` for `/predict` too.'),
  METRICS_REQUIRES_KEY: boolFromEnv().describe(
    'Require `API_KEY` for `/metrics` too (a Prometheus scraper then sends it).',
  ),
  ALLOW_UNAUTHENTICATED: boolFromEnv().describe(
    'Start on a `HOST` other machines can reach without `API_KEY`, leaving job and model ' +
      'administration open to the network. Without it, the API refuses to start that way.',
  ),
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
    })
    .describe(
      "Which proxies in front of the API to believe about the client's address " +
        '(`X-Forwarded-For`), so rate limits count per client behind a load balancer: `false` ' +
        "(the socket's address), `true` (any), a number of hops (only when clients reach the API " +
        'through the proxies alone), or addresses and CIDR ranges, comma-separated.',
    ),
  CORS_ORIGINS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean),
    )
    .describe('Browser origins allowed to call the API, comma-separated; none: the same origin only.'),
  RATE_LIMIT_PER_MINUTE: intFromEnv(600, 0, 1_000_000).describe(
    'Requests per minute per client, counted in Redis so every replica shares the count; 0: no limit.',
  ),
  PREDICT_RATE_LIMIT_PER_MINUTE: intFromEnv(0, 0, 100_000_000).describe(
    'Requests per minute per client to `/predict`, counted apart from the others; 0: no limit.',
  ),

  // Feedback: corrections clients send back (issue 17).
  FEEDBACK: z
    .enum(['on', 'off'])
    .default('on')
    .describe(
      'Whether clients may send corrected examples (`POST /feedback`) and read them back ' +
        '(`GET /feedback`, `/feedback/examples`, `/feedback/samples.png`); `off`: those routes are ' +
        'not there (404) and no version is measured on feedback.',
    ),
  FEEDBACK_REQUIRES_KEY: boolFromEnv().describe(
    'Require `API_KEY` for `POST /feedback` too. The feedback GETs are open like the other GETs; ' +
      '`DELETE /feedback/:id` always needs the key when one is set.',
  ),
  FEEDBACK_RATE_LIMIT_PER_MINUTE: intFromEnv(60, 0, 100_000_000).describe(
    'Requests per minute per client to `POST /feedback`, counted apart from the others (and from ' +
      '`/predict`); 0: no limit.',
  ),
  FEEDBACK_MAX_EXAMPLES: intFromEnv(10_000, 1, 1_000_000).describe(
    'Most feedback examples stored; `POST /feedback` of a new one beyond it gets 409 ' +
      '(`feedback_full`) until some are deleted.',
  ),
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
  if (parsed.success) {
    try {
      storeLocation(parsed.data);
    } catch (err) {
      throw new ConfigError(`invalid configuration:\n  ${(err as Error).message}`);
    }
    return parsed.data;
  }
  const problems = parsed.error.issues.map((i) => {
    const name = String(i.path[0]);
    return `${name}: ${i.message} (got ${shownValue(name, env[name])})`;
  });
  throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
}

/** A setting's value as an error message may show it: a secret one never whole (see `secret` above). */
function shownValue(name: string, value: string | undefined): string {
  if (value === undefined) return 'nothing';
  const secret = configSchema.shape[name as keyof Config]?.meta()?.secret;
  if (secret === 'value') return `a value of ${value.length} characters`;
  return JSON.stringify(secret === 'url' ? withoutCredentials(value) : value);
}

/**
 * `url` with the user and password it may carry (`redis://:password@host`) as `***`: everything
 * between the scheme's `//` and the last `@`, so a password with an unescaped `/` or `@` goes too.
 */
export function withoutCredentials(url: string): string {
  const at = url.lastIndexOf('@');
  if (at < 0) return url;
  const slashes = url.indexOf('//');
  const from = slashes >= 0 && slashes < at ? slashes + 2 : 0;
  return `${url.slice(0, from)}***${url.slice(at)}`;
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
  const needKey = (['PREDICT_REQUIRES_KEY', 'METRICS_REQUIRES_KEY', 'FEEDBACK_REQUIRES_KEY'] as const).filter(
    (name) => config[name],
  );
  if (!config.API_KEY && needKey.length > 0) {
    const [last, ...others] = [...needKey].reverse();
    const names = others.length ? `${others.reverse().join(', ')} and ${last}` : last;
    throw new ConfigError(
      `${names} ${others.length ? 'ask' : 'asks'} for API_KEY, which is not set: set API_KEY (16 or more ` +
        `characters), or unset ${others.length ? 'them' : last}`,
    );
  }
}
