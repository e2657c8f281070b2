import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  checkApiExposure,
  ConfigError,
  configSchema,
  isLoopbackHost,
  loadConfig,
  trainingThreads,
  withoutCredentials,
} from '../src/config.js';

describe('config', () => {
  it('when nothing is set, then every setting has its documented default', () => {
    expect(loadConfig({})).toMatchObject({
      HOST: '127.0.0.1',
      PORT: 3000,
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_PREFIX: 'digits',
      STORE_URL: './data',
      S3_REGION: 'us-east-1',
      S3_FORCE_PATH_STYLE: false,
      STORE_CACHE_DIR: './data/cache',
      LOG_LEVEL: 'info',
      WORKER_CONCURRENCY: 1,
      TRAINING_THREADS: 0,
      WORKER_LOCK_MS: 30_000,
      JOB_ATTEMPTS: 3,
      JOB_RETENTION_COUNT: 1000,
      JOB_RETENTION_HOURS: 168,
      WORKER_SHUTDOWN_GRACE_MS: 15_000,
      SHUTDOWN_DRAIN_MS: 0,
      BODY_LIMIT_BYTES: 1024 * 1024,
      PREDICT_BODY_LIMIT_BYTES: 16 * 1024 * 1024,
      JOB_MAX_IMAGES: 1_500_000,
      DATASET_DIRS: [],
      JOB_MAX_WAITING: 1000,
      TRUST_PROXY: false,
      METRICS_REQUIRES_KEY: false,
      ALLOW_UNAUTHENTICATED: false,
      FEEDBACK: 'on',
      FEEDBACK_REQUIRES_KEY: false,
      FEEDBACK_RATE_LIMIT_PER_MINUTE: 60,
      FEEDBACK_MAX_EXAMPLES: 10_000,
    });
  });

  it.each([
    [{}, 1, 2, 2],
    [{}, 1, 1, 1],
    [{}, 2, 2, 1],
    [{ WORKER_CONCURRENCY: '2' }, 1, 2, 1],
    [{ WORKER_CONCURRENCY: '2' }, 1, 8, 4],
    [{ WORKER_CONCURRENCY: '4' }, 2, 2, 1],
    [{ TRAINING_THREADS: '3' }, 2, 2, 3],
  ])(
    'when the settings are %j with %i worker(s) on %i cores, then each job trains on %i thread(s)',
    (env, workers, cores, expected) => {
      expect(trainingThreads(loadConfig(env), workers, cores)).toBe(expected);
    },
  );

  it.each([
    ['true', true],
    ['false', false],
    ['2', 2],
    ['10.0.0.1', ['10.0.0.1']],
    [' 10.0.0.0/8, loopback ,2001:db8::/32', ['10.0.0.0/8', 'loopback', '2001:db8::/32']],
  ])('when TRUST_PROXY is %j, then Fastify is given %j', (value, expected) => {
    expect(loadConfig({ TRUST_PROXY: value }).TRUST_PROXY).toEqual(expected);
  });

  it('when CORS origins and the predict key switch are set, then they are parsed', () => {
    expect(
      loadConfig({ CORS_ORIGINS: 'https://a.example, https://b.example', PREDICT_REQUIRES_KEY: 'true' }),
    ).toMatchObject({
      CORS_ORIGINS: ['https://a.example', 'https://b.example'],
      PREDICT_REQUIRES_KEY: true,
    });
    expect(loadConfig({})).toMatchObject({ CORS_ORIGINS: [], PREDICT_REQUIRES_KEY: false });
  });

  it('when a variable is set but empty, then it counts as not set', () => {
    expect(loadConfig({ API_KEY: '', PORT: '' })).toMatchObject({ PORT: 3000 });
    expect(loadConfig({ API_KEY: '' }).API_KEY).toBeUndefined();
  });

  it('when values come as strings, then numbers are parsed', () => {
    expect(loadConfig({ PORT: '8080', WORKER_CONCURRENCY: '2', TF_BACKEND: 'cpu' })).toMatchObject({
      PORT: 8080,
      WORKER_CONCURRENCY: 2,
      TF_BACKEND: 'cpu',
    });
  });

  it('when nothing is set, then the work and connections one client can hold are bounded (issue 12)', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      PREDICT_MAX_IMAGES: 256,
      PREDICT_MAX_ENCODED_IMAGES: 16,
      PREDICT_DECODE_QUEUE: 32,
      HTTP_REQUEST_TIMEOUT_MS: 30_000,
      HTTP_HEADERS_TIMEOUT_MS: 10_000,
      HTTP_IDLE_TIMEOUT_MS: 120_000,
      HTTP_MAX_CONNECTIONS: 1000,
      EVENT_STREAMS_PER_CLIENT: 10,
      EVENT_STREAMS_MAX: 500,
    });
    expect(config.PREDICT_DECODE_CONCURRENCY).toBe(Math.max(1, Math.floor(availableParallelism() / 2)));
    // Below the event streams' 15 s heartbeat, an idle timeout would end every stream.
    expect(() => loadConfig({ HTTP_IDLE_TIMEOUT_MS: '10000' })).toThrow('HTTP_IDLE_TIMEOUT_MS');
    expect(() => loadConfig({ PREDICT_DECODE_CONCURRENCY: '0' })).toThrow('PREDICT_DECODE_CONCURRENCY');
  });

  it.each([
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ REDIS_URL: 'http://localhost' }, 'REDIS_URL: must be a redis:// or rediss:// URL'],
    [{ REDIS_PREFIX: 'a b' }, 'REDIS_PREFIX'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ TF_BACKEND: 'gpu' }, 'TF_BACKEND'],
    [{ WORKER_CONCURRENCY: '0' }, 'WORKER_CONCURRENCY'],
    [{ TRAINING_THREADS: '-1' }, 'TRAINING_THREADS'],
    [{ TRAINING_THREADS: '65' }, 'TRAINING_THREADS'],
    [{ TRAINING_THREADS: 'two' }, 'TRAINING_THREADS'],
    [{ JOB_ATTEMPTS: '1.5' }, 'JOB_ATTEMPTS'],
    [{ API_KEY: 'short' }, 'API_KEY: must be at least 16 characters'],
    [{ PREDICT_REQUIRES_KEY: 'yes' }, 'PREDICT_REQUIRES_KEY: must be true or false'],
    [{ TRUST_PROXY: 'my-balancer' }, 'TRUST_PROXY: must be true, false, a number of hops'],
    [{ TRUST_PROXY: ',' }, 'TRUST_PROXY'],
    [{ JOB_MAX_WAITING: '0' }, 'JOB_MAX_WAITING'],
    [{ FEEDBACK: 'yes' }, 'FEEDBACK'],
    [{ FEEDBACK_REQUIRES_KEY: 'maybe' }, 'FEEDBACK_REQUIRES_KEY: must be true or false'],
    [{ FEEDBACK_RATE_LIMIT_PER_MINUTE: '-1' }, 'FEEDBACK_RATE_LIMIT_PER_MINUTE'],
    [{ FEEDBACK_MAX_EXAMPLES: '0' }, 'FEEDBACK_MAX_EXAMPLES'],
  ])('when %j, then start-up stops with a message naming %s', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});

describe('secrets in start-up errors', () => {
  /** The message loadConfig stops start-up with. */
  const refusal = (env: Record<string, string>): string => {
    try {
      loadConfig(env);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as Error).message;
    }
    throw new Error(`${JSON.stringify(Object.keys(env))} was taken`);
  };

  it('when API_KEY is too short, then the error names it and its length, never its value', () => {
    const message = refusal({ API_KEY: 'hunter2-secret' });
    expect(message).toContain('API_KEY: must be at least 16 characters (got a value of 14 characters)');
    expect(message).not.toContain('hunter2');
  });

  it.each([
    ['REDIS_URL', 'http://default:hunter2-secret@redis.internal:6379', '"http://***@redis.internal:6379"'],
    ['REDIS_URL', 'hunter2-secret@redis.internal', '"***@redis.internal"'],
    ['STORE_URL', 's3://AKIAEXAMPLE:hunter2-secret@models/versions', '"s3://***@models/versions"'],
    ['S3_ENDPOINT', 'ftp://minio:hunter2-secret@minio.internal:9000', '"ftp://***@minio.internal:9000"'],
  ])(
    'when %s carries a password and is refused, then the error shows it without the password',
    (name, value, shown) => {
      const message = refusal({ [name]: value });
      expect(message).toContain(`${name}: `);
      expect(message).toContain(`(got ${shown})`);
      expect(message).not.toContain('hunter2');
      expect(message).not.toContain('AKIAEXAMPLE');
    },
  );

  it('when a setting is not secret, then its bad value is shown as it came', () => {
    expect(refusal({ PORT: 'eighty' })).toContain(
      'PORT: Invalid input: expected number, received NaN (got "eighty")',
    );
  });

  it.each([
    ['redis://:pa/ss@host:6379/0', 'redis://***@host:6379/0'],
    ['rediss://user:p@ss@host', 'rediss://***@host'],
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['./data', './data'],
  ])('when %s is shown, then it is %s', (url, shown) => {
    expect(withoutCredentials(url)).toBe(shown);
  });
});

describe('the API refuses to start exposed without a key', () => {
  const KEY = { API_KEY: 'a-long-enough-test-key-0123456789' };

  it.each(['0.0.0.0', '::', '192.168.1.20', 'digits.example'])(
    'when HOST is %s and API_KEY is not set, then start-up stops naming API_KEY and ALLOW_UNAUTHENTICATED',
    (host) => {
      const config = loadConfig({ HOST: host });
      expect(() => checkApiExposure(config)).toThrow(ConfigError);
      expect(() => checkApiExposure(config)).toThrow(/API_KEY.*ALLOW_UNAUTHENTICATED=true/s);
    },
  );

  it('when HOST is reachable but the key is set, or the opt-out says so, then it starts', () => {
    expect(() => checkApiExposure(loadConfig({ HOST: '0.0.0.0', ...KEY }))).not.toThrow();
    expect(() =>
      checkApiExposure(loadConfig({ HOST: '0.0.0.0', ALLOW_UNAUTHENTICATED: 'true' })),
    ).not.toThrow();
  });

  it.each(['127.0.0.1', 'localhost', '::1', '[::1]', '127.0.0.2'])(
    'when HOST is the loopback address %s, then it starts without a key',
    (host) => {
      expect(isLoopbackHost(host)).toBe(true);
      expect(() => checkApiExposure(loadConfig({ HOST: host }))).not.toThrow();
    },
  );

  it('when PREDICT_, METRICS_ or FEEDBACK_REQUIRES_KEY is set without API_KEY, then start-up stops', () => {
    expect(() => checkApiExposure(loadConfig({ METRICS_REQUIRES_KEY: 'true' }))).toThrow(
      'METRICS_REQUIRES_KEY asks for API_KEY',
    );
    expect(() => checkApiExposure(loadConfig({ PREDICT_REQUIRES_KEY: '1' }))).toThrow(
      'PREDICT_REQUIRES_KEY asks for API_KEY, which is not set: set API_KEY (16 or more characters), or unset PREDICT_REQUIRES_KEY',
    );
    expect(() => checkApiExposure(loadConfig({ FEEDBACK_REQUIRES_KEY: 'true' }))).toThrow(
      'FEEDBACK_REQUIRES_KEY asks for API_KEY',
    );
    expect(() => checkApiExposure(loadConfig({ METRICS_REQUIRES_KEY: 'true', ...KEY }))).not.toThrow();
    expect(() => checkApiExposure(loadConfig({ FEEDBACK_REQUIRES_KEY: 'true', ...KEY }))).not.toThrow();
    expect(() => checkApiExposure(loadConfig({ PREDICT_REQUIRES_KEY: 'true', ...KEY }))).not.toThrow();
  });

  it('when several *_REQUIRES_KEY are set without API_KEY, then start-up stops naming each of them', () => {
    const all = { PREDICT_REQUIRES_KEY: 'true', METRICS_REQUIRES_KEY: 'true', FEEDBACK_REQUIRES_KEY: 'true' };
    expect(() => checkApiExposure(loadConfig(all))).toThrow(
      'PREDICT_REQUIRES_KEY, METRICS_REQUIRES_KEY and FEEDBACK_REQUIRES_KEY ask for API_KEY, which is not set',
    );
  });
});

describe('the configuration reference', () => {
  it('when a setting exists, then the configuration table documents it', async () => {
    const section = await readFile(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    const undocumented = Object.keys(configSchema.shape).filter((key) => !section.includes(`\`${key}\``));
    expect(undocumented).toEqual([]);
  });
});
