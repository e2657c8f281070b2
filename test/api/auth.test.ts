import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { connect, removePrefix, uniquePrefix } from '../helpers/redis.js';

const KEY = 'a-long-enough-test-key-0123456789';

describe('API key, security headers and CORS', () => {
  const prefix = uniquePrefix('auth');
  const redis = connect();
  let dir: string;
  let api: TestApi;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auth-'));
    api = await startTestApi(redis, prefix, join(dir, 'models'), {
      auth: { apiKey: KEY, protectPredict: true },
      corsOrigins: ['https://app.example'],
    });
  });
  afterAll(async () => {
    await api.close();
    await removePrefix(redis, prefix);
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  });

  const protectedRoutes = [
    ['post', '/jobs', { epochs: 1 }],
    ['delete', '/jobs/some-id', undefined],
    ['put', '/models/aliases/production', { version: 1 }],
    ['delete', '/models/aliases/production', undefined],
    ['delete', '/models/1', undefined],
    ['post', '/predict', { image: new Array(784).fill(0) }],
  ] as const;

  it.each(protectedRoutes)(
    'when %s %s comes without a key, then it answers 401 saying how to send one',
    async (method, path, body) => {
      const res = await request(api.app.server)[method](path).send(body);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(res.body.error.message).toContain('Authorization: Bearer');
    },
  );

  it.each(protectedRoutes)(
    'when %s %s comes with a wrong key, then it answers 401',
    async (method, path, body) => {
      const res = await request(api.app.server)[method](path).set('x-api-key', 'wrong-key').send(body);
      expect(res.status).toBe(401);
      expect(res.body.error.message).toBe('the API key is not valid');
    },
  );

  it('when the right key comes as a bearer token or as X-API-Key, then the request goes through', async () => {
    const bearer = await request(api.app.server)
      .post('/jobs')
      .set('authorization', `Bearer ${KEY}`)
      .send({ epochs: 1, trainSize: 100 });
    expect(bearer.status).toBe(202);
    const header = await request(api.app.server).delete(`/jobs/${bearer.body.id}`).set('x-api-key', KEY);
    expect(header.status).toBe(202);
    const predict = await request(api.app.server)
      .post('/predict')
      .set('x-api-key', KEY)
      .send({ image: new Array(784).fill(0) });
    expect(predict.status).toBe(503); // past auth: no model yet
  });

  it('when reading, then no key is needed', async () => {
    await request(api.app.server).get('/jobs').expect(200);
    await request(api.app.server).get('/models').expect(200);
    await request(api.app.server).get('/healthz').expect(200);
  });

  it('when any route answers, then security headers are set; CORS allows only the configured origin', async () => {
    const res = await request(api.app.server).get('/healthz').set('origin', 'https://app.example');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBeDefined();
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example');
    const other = await request(api.app.server).get('/healthz').set('origin', 'https://evil.example');
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });
});
