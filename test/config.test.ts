import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError, configSchema, loadConfig } from '../src/config.js';

describe('config', () => {
  it('when nothing is set, then every setting has its documented default', () => {
    expect(loadConfig({})).toMatchObject({
      HOST: '127.0.0.1',
      PORT: 3000,
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_PREFIX: 'digits',
      MODEL_DIR: './data/models',
      CHECKPOINT_DIR: './data/checkpoints',
      LOG_LEVEL: 'info',
      WORKER_CONCURRENCY: 1,
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
    });
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
    [{ JOB_ATTEMPTS: '1.5' }, 'JOB_ATTEMPTS'],
    [{ API_KEY: 'short' }, 'API_KEY: must be at least 16 characters'],
    [{ PREDICT_REQUIRES_KEY: 'yes' }, 'PREDICT_REQUIRES_KEY: must be true or false'],
  ])('when %j, then start-up stops with a message naming %s', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});

describe('the README', () => {
  it('when a setting exists, then the configuration table documents it', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Architecture'));
    const undocumented = Object.keys(configSchema.shape).filter((key) => !section.includes(`\`${key}\``));
    expect(undocumented).toEqual([]);
  });
});
