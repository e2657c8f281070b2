import { Redis } from 'ioredis';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { AppOptions } from '../../src/api/app.js';
import { useTestApis } from '../helpers/api.js';
import { pathVariants } from '../helpers/path-variants.js';
import { sendRaw } from '../helpers/raw-http.js';
import { removePrefix, uniquePrefix } from '../helpers/redis.js';

const HOUR_MS = 3_600_000;

describe('rate limits', () => {
  const { redis, prefix, start } = useTestApis('ratelimit');

  /**
   * One API replica; several share the limits through Redis (`counts`: whose counts it shares).
   * An hour's window: a test's requests all fall in one, however slowly the machine runs them.
   */
  const replica = (counts = prefix, options: AppOptions = {}) =>
    start({
      rateLimit: { redis, prefix: counts, perMinute: 3, predictPerMinute: 2, windowMs: HOUR_MS },
      ...options,
    });

  it('when a client goes over the limit, then it gets 429 with a retry time, on every replica', async () => {
    const first = (await replica()).app;
    for (let i = 0; i < 3; i++) await request(first.server).get('/jobs').expect(200);
    const over = await request(first.server).get('/jobs').expect(429);
    expect(over.body.error).toMatchObject({ code: 'rate_limited' });
    expect(over.body.error.message).toContain('rate limit of 3 requests per 3600 s');
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    const second = (await replica()).app;
    await request(second.server).get('/models').expect(429);
  });

  it('when probes and /predict are called, then probes are never limited and /predict has its own limit', async () => {
    const { app } = await replica();
    for (let i = 0; i < 10; i++) {
      await request(app.server).get('/healthz').expect(200);
      await request(app.server).get('/readyz').expect(200);
    }
    const image = { image: new Array(784).fill(0) };
    await request(app.server).post('/predict').send(image).expect(503);
    await request(app.server).post('/predict').send(image).expect(503);
    await request(app.server).post('/predict').send(image).expect(429);
  });

  it('when /predict is written encoded, in absolute form or with a fragment, then every variant the router takes counts in the /predict bucket', async () => {
    const counts = uniquePrefix('ratelimit-variants');
    const api = await replica(counts);
    const port = await api.listen();
    const body = Buffer.from(JSON.stringify({ image: new Array(784).fill(0) }));
    const answers: string[] = [];
    for (const variant of [{ kind: 'plain', target: '/predict' }, ...pathVariants('/predict')]) {
      const answer = await sendRaw(port, {
        method: 'POST',
        path: variant.target,
        headers: { 'content-type': 'application/json' },
        body,
      });
      answers.push(`${answer.status}${answer.body.includes('no route for') ? ' unrouted' : ''}`);
    }
    // 503 (no model yet): the handler ran. Only the first two of all variants may get there.
    expect(answers.filter((a) => a === '503')).toHaveLength(2);
    expect(answers.slice(0, 2)).toEqual(['503', '503']);
    expect(answers.filter((a) => a !== '503' && a !== '429' && a !== '404 unrouted')).toEqual([]);
    // Its own bucket: the API's count is untouched.
    await request(api.app.server).get('/jobs').expect(200);
    await removePrefix(redis, counts);
  });

  it('when TRUST_PROXY trusts the proxy, then X-Forwarded-For is the client counted; otherwise it is ignored', async () => {
    const counts = uniquePrefix('ratelimit-proxy');
    const behind = (await replica(counts, { trustProxy: ['127.0.0.1'] })).app;
    for (let i = 0; i < 3; i++)
      await request(behind.server).get('/jobs').set('x-forwarded-for', '203.0.113.7').expect(200);
    await request(behind.server).get('/jobs').set('x-forwarded-for', '203.0.113.7').expect(429);
    // Another client behind the same proxy has its own count.
    await request(behind.server).get('/jobs').set('x-forwarded-for', '203.0.113.8').expect(200);
    // One hop trusted: the address the proxy added last is the client's, whatever the client claimed.
    const hops = (await replica(counts, { trustProxy: 1 })).app;
    await request(hops.server).get('/jobs').set('x-forwarded-for', '1.2.3.4, 203.0.113.7').expect(429);
    await request(hops.server).get('/jobs').set('x-forwarded-for', '203.0.113.7, 203.0.113.9').expect(200);

    const directCounts = uniquePrefix('ratelimit-direct');
    const direct = (await replica(directCounts)).app;
    for (let i = 0; i < 3; i++)
      await request(direct.server).get('/jobs').set('x-forwarded-for', `198.51.100.${i}`).expect(200);
    // A client cannot make itself new by claiming another address.
    await request(direct.server).get('/jobs').set('x-forwarded-for', '198.51.100.99').expect(429);
    await removePrefix(redis, counts);
    await removePrefix(redis, directCounts);
  });

  it('when Redis cannot be reached, then requests are answered without the limit (fail open)', async () => {
    // What a Redis outage looks like to the API: its connection queues commands until Redis is back.
    // Nothing ever listens on port 1, so an answer at all shows the check did not wait for Redis,
    // and four answers past a limit of two show it let them through.
    const away = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: null });
    away.on('error', () => undefined);
    const api = await start({ rateLimit: { redis: away, prefix, perMinute: 2, predictPerMinute: 0 } });
    for (let i = 0; i < 4; i++) await request(api.app.server).get('/models').expect(200);
    await request(api.app.server)
      .post('/predict')
      .send({ image: new Array(784).fill(0) })
      .expect(503);
    away.disconnect();
  });
});
