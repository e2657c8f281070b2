import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi } from '../helpers/api.js';
import { connect, removePrefix, uniquePrefix } from '../helpers/redis.js';

describe('rate limits', () => {
  const prefix = uniquePrefix('ratelimit');
  const redis = connect();
  let dir: string;
  const closers: (() => Promise<void>)[] = [];

  /** One API replica; several share the limits through Redis. */
  async function replica() {
    const api = await startTestApi(redis, prefix, join(dir, 'models'), {
      rateLimit: { redis, prefix, perMinute: 3, predictPerMinute: 2 },
    });
    closers.push(() => api.close());
    return api.app;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ratelimit-'));
  });
  afterAll(async () => {
    for (const close of closers) await close();
    await removePrefix(redis, prefix);
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  });

  it('when a client goes over the limit, then it gets 429 with a retry time, on every replica', async () => {
    const first = await replica();
    for (let i = 0; i < 3; i++) await request(first.server).get('/jobs').expect(200);
    const over = await request(first.server).get('/jobs').expect(429);
    expect(over.body.error).toMatchObject({ code: 'rate_limited' });
    expect(over.body.error.message).toContain('rate limit of 3 requests per minute');
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    const second = await replica();
    await request(second.server).get('/models').expect(429);
  });

  it('when probes and /predict are called, then probes are never limited and /predict has its own limit', async () => {
    const app = await replica();
    for (let i = 0; i < 10; i++) {
      await request(app.server).get('/healthz').expect(200);
      await request(app.server).get('/readyz').expect(200);
    }
    const image = { image: new Array(784).fill(0) };
    await request(app.server).post('/predict').send(image).expect(503);
    await request(app.server).post('/predict').send(image).expect(503);
    await request(app.server).post('/predict').send(image).expect(429);
  });

  it('when Redis cannot be reached, then requests are answered without the limit (fail open)', async () => {
    // What a Redis outage looks like to the API: its connection queues commands until Redis is back.
    // Nothing ever listens on port 1, so an answer at all shows the check did not wait for Redis,
    // and four answers past a limit of two show it let them through.
    const away = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: null });
    away.on('error', () => undefined);
    const api = await startTestApi(redis, prefix, join(dir, 'models'), {
      rateLimit: { redis: away, prefix, perMinute: 2, predictPerMinute: 0 },
    });
    closers.push(() => api.close());
    for (let i = 0; i < 4; i++) await request(api.app.server).get('/models').expect(200);
    await request(api.app.server)
      .post('/predict')
      .send({ image: new Array(784).fill(0) })
      .expect(503);
    away.disconnect();
  });
});
