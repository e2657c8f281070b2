import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { connect, removePrefix, uniquePrefix } from '../helpers/redis.js';

describe('body limits from the configuration', () => {
  const prefix = uniquePrefix('limits');
  const redis = connect();
  let dir: string;
  let api: TestApi;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'limits-'));
    api = await startTestApi(redis, prefix, join(dir, 'models'), { bodyLimit: 1024, predictBodyLimit: 4096 });
  });
  afterAll(async () => {
    await api.close();
    await removePrefix(redis, prefix);
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  });

  it('when a job body is over BODY_LIMIT_BYTES, then 413 and no job', async () => {
    const res = await request(api.app.server)
      .post('/jobs')
      .send({ epochs: 1, padding: 'x'.repeat(2000) })
      .expect(413);
    expect(res.body.error.code).toBe('payload_too_large');
    expect((await api.jobs.list({ limit: 10, offset: 0 })).jobs).toEqual([]);
  });

  it('when a /predict body is over PREDICT_BODY_LIMIT_BYTES, as JSON or as raw PNG bytes, then 413', async () => {
    await request(api.app.server)
      .post('/predict')
      .send({ images: [new Array(784).fill(0.5), new Array(784).fill(0.5)] })
      .expect(413);
    await request(api.app.server)
      .post('/predict')
      .set('content-type', 'image/png')
      .send(Buffer.alloc(5000))
      .expect(413);
  });

  it('when a /predict body is under its own limit but over the general one, then it is read (503: no model yet)', async () => {
    await request(api.app.server)
      .post('/predict')
      .send({ image: new Array(784).fill(0) })
      .expect(503);
  });
});
