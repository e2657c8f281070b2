import { join } from 'node:path';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { uniquePrefix } from '../helpers/redis.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { freePort, RedisServer } from '../helpers/redis-server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('readiness while Redis goes away and comes back', () => {
  const dir = useTempDir('readiness');
  let server: RedisServer;
  let redis: Redis;
  let api: TestApi;

  beforeAll(async () => {
    server = new RedisServer(await freePort(), join(dir, 'redis'));
    await server.start();
    // The API's own connection settings: retry for ever, reconnect when Redis is back.
    redis = new Redis(server.url, { maxRetriesPerRequest: null });
    redis.on('error', () => undefined);
    api = await startTestApi(redis, uniquePrefix('readiness'), join(dir, 'models'));
  });

  afterAll(async () => {
    await api?.close();
    redis?.disconnect();
    await server?.stop('SIGKILL');
  });

  async function readiness(): Promise<{
    status: number;
    body: { ready: boolean; checks: { redis: { ok: boolean; error?: string } } };
  }> {
    const res = await request(api.app.server).get('/readyz');
    return { status: res.status, body: res.body };
  }

  async function waitForStatus(status: number): Promise<Awaited<ReturnType<typeof readiness>>> {
    // A net, not a bar: reconnecting takes well under a second on a quiet machine.
    for (let i = 0; i < 450; i++) {
      const now = await readiness();
      if (now.status === status) return now;
      await sleep(100);
    }
    throw new Error(`/readyz never answered ${status}`);
  }

  it(
    'when its Redis stops, then /readyz answers 503 naming Redis and /healthz stays 200; when Redis is back, /readyz recovers',
    { timeout: 60_000 },
    async () => {
      expect((await readiness()).status).toBe(200);

      await server.stop('SIGKILL');
      const down = await waitForStatus(503);
      expect(down.body.ready).toBe(false);
      expect(down.body.checks.redis.ok).toBe(false);
      expect(down.body.checks.redis.error).toMatch(/\S/);
      await request(api.app.server).get('/healthz').expect(200);

      await server.start();
      const up = await waitForStatus(200);
      expect(up.body).toMatchObject({ ready: true, checks: { redis: { ok: true } } });
      // Not only the probe: the job API works again on the reconnected client.
      await request(api.app.server).post('/jobs').send({ epochs: 1, trainSize: 100 }).expect(202);
    },
  );
});
