import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Predictor } from '../../src/api/predictor.js';
import { followRegistry } from '../../src/api/registry-updates.js';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import {
  MODEL_CHANNEL,
  publishDeletion as announceDeletion,
  publishVersion as announceVersion,
} from '../../src/registry/announcer.js';
import { ALIAS_CHANNEL, ModelAliases } from '../../src/registry/model-aliases.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { type ModelStore } from '../../src/registry/model-store.js';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { logInto } from '../helpers/logs.js';
import { connect, useRedisPrefix } from '../helpers/redis.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { trainingReportFixture } from '../helpers/training-report.js';
import { until } from '../helpers/until.js';

const image = Array.from({ length: IMAGE_PIXELS }, () => 0);

/** An untrained model under a made-up report: a real version in the store, in milliseconds. */
async function publishVersion(store: ModelStore): Promise<number> {
  const model = buildModel('seed', 1);
  try {
    return (await store.publish(model, trainingReportFixture(), { jobId: null })).version;
  } finally {
    model.dispose();
  }
}

/** One API replica that follows the registry on Redis, as `npm run start:api` runs it. */
async function replica(prefix: string, modelDir: string, logs: { msg: string; problem?: string }[] = []) {
  const redis = connect();
  const api = await startTestApi(redis, prefix, modelDir);
  await api.predictor.refresh();
  const updates = await followRegistry({
    redis,
    prefix,
    predictor: api.predictor,
    aliases: api.aliases,
    logger: logInto(logs, 'warn'),
    pollMs: 3_600_000,
  });
  const predict = (query = '') => request(api.app.server).post(`/predict${query}`).send({ image });
  return {
    api,
    predict,
    async close() {
      await updates.close();
      await api.close();
      await redis.quit();
    },
  };
}

describe('API replicas and the registry on Redis', () => {
  const { redis, prefix } = useRedisPrefix('registry-updates');
  const aside = useRedisPrefix('registry-updates-aside');
  const store = new FileModelStore(join(useTempDir('registry-updates'), 'models'));
  const closing: { close(): Promise<void> }[] = [];

  beforeAll(() => initBackend('wasm'));
  afterAll(async () => {
    for (const c of closing) await c.close();
  });

  it('when Redis is gone after the aliases were loaded, then /predict?version=<alias> still answers from the copy', async () => {
    const version = await publishVersion(store);
    const own = connect();
    const api: TestApi = await startTestApi(aside.redis, aside.prefix, store.root, { aliasConnection: own });
    closing.push(api);
    await request(api.app.server).put('/models/aliases/production').send({ version }).expect(200);
    // Every command on this connection now fails; none may be needed to resolve the alias.
    own.disconnect();
    const answer = await request(api.app.server)
      .post('/predict?version=production')
      .send({ image })
      .expect(200);
    expect(answer.body.modelVersion).toBe(version);
    const unknown = await request(api.app.server).post('/predict?version=canary').send({ image }).expect(404);
    expect(unknown.body.error.message).toBe('alias canary not found');
  });

  it('when another replica deletes a version this one holds loaded, then this one stops serving it too', async () => {
    const [v1, , v3] = [
      await publishVersion(store),
      await publishVersion(store),
      await publishVersion(store),
    ];
    const a = await replica(prefix, store.root);
    const b = await replica(prefix, store.root);
    closing.push(a, b);
    expect((await b.predict(`?version=${v1}`).expect(200)).body.modelVersion).toBe(v1);
    expect((await b.predict().expect(200)).body.modelVersion).toBe(v3);

    await request(a.api.app.server).delete(`/models/${v1}`).expect(204);
    await until('replica b to drop the pinned version', async () =>
      (await b.predict(`?version=${v1}`)).status === 404 ? true : undefined,
    );
    // The served version deleted: the newest remaining one takes over.
    await request(a.api.app.server).delete(`/models/${v3}`).expect(204);
    const next = await until('replica b to serve another version', async () => {
      const answer = await b.predict();
      return answer.status === 200 && answer.body.modelVersion !== v3 ? answer.body.modelVersion : undefined;
    });
    expect(next).toBe(v3 - 1);
    expect((await b.predict(`?version=${v3}`)).status).toBe(404);
  });

  it('when garbage is published on the model and alias channels, then it is logged and dropped and later announcements still apply', async () => {
    const version = await publishVersion(store);
    const logs: { msg: string; problem?: string }[] = [];
    const a = await replica(prefix, store.root, logs);
    closing.push(a);
    const garbage = [
      'not json',
      'null',
      '[]',
      '{"version":-1}',
      '{"name":"Bad!","version":1}',
      '{"name":"x"}',
    ];
    for (const message of garbage) {
      await redis.publish(MODEL_CHANNEL(prefix), message);
      await redis.publish(ALIAS_CHANNEL(prefix), message);
    }
    // Another replica moves an alias: heard here after all the garbage (one channel keeps order).
    await new ModelAliases(redis, prefix).set('canary', version);
    await until('the alias to reach this replica', async () =>
      (await a.predict('?version=canary')).status === 200 ? true : undefined,
    );
    const dropped = await until('every bad message to be logged', async () => {
      const found = logs.filter((l) => l.msg === 'dropped a malformed pub/sub message');
      return found.length >= 2 * garbage.length ? found : undefined;
    });
    expect(dropped).toHaveLength(2 * garbage.length);
    expect(dropped.some((l) => l.problem?.includes('is not JSON'))).toBe(true);
    await request(a.api.app.server).get('/healthz').expect(200);
  });
});

describe('registry updates tell the feedback evaluation of versions', () => {
  const { redis, prefix } = useRedisPrefix('registry-feedback');
  const quiet = useRedisPrefix('registry-feedback-quiet');
  const store = new FileModelStore(join(useTempDir('registry-feedback'), 'models'));
  beforeAll(() => initBackend('wasm'));

  /** A process's registry follower on `on`, counting what it tells the feedback evaluation. */
  async function follow(on: { redis: typeof redis; prefix: string }, pollMs: number) {
    const predictor = new Predictor({ store, logger: pino({ level: 'silent' }) });
    await predictor.refresh();
    const told = { count: 0 };
    const updates = await followRegistry({
      ...on,
      predictor,
      aliases: new ModelAliases(on.redis, on.prefix),
      logger: pino({ level: 'silent' }),
      pollMs,
      onVersionsChanged: () => told.count++,
    });
    return { predictor, told, updates };
  }

  it('when a version is announced published or deleted, then it is told of each', async () => {
    const { predictor, told, updates } = await follow({ redis, prefix }, 3_600_000);
    try {
      const version = await publishVersion(store);
      await announceVersion(redis, prefix, { version, createdAt: new Date().toISOString() });
      await until('the publication to be heard', () => (told.count === 1 ? true : undefined));
      await announceDeletion(redis, prefix, version);
      await until('the deletion to be heard', () => (told.count === 2 ? true : undefined));
    } finally {
      await updates.close();
      predictor.close();
    }
  });

  it('when an alias moves, then it is told, so the version the alias names keeps its figure', async () => {
    const { predictor, told, updates } = await follow({ redis, prefix }, 3_600_000);
    try {
      const version = await publishVersion(store);
      expect(await new ModelAliases(redis, prefix).set('production', version)).toBe(true);
      await until('the alias change to be heard', () => (told.count === 1 ? true : undefined));
    } finally {
      await updates.close();
      predictor.close();
    }
  });

  it('when the poll finds a version nobody announced, then it is told; a poll that finds nothing new tells nothing', async () => {
    const { predictor, told, updates } = await follow(quiet, 50);
    try {
      const before = predictor.version;
      const version = await publishVersion(store);
      await until('the poll to serve it', () => (predictor.version === version ? true : undefined));
      expect(before).not.toBe(version);
      await until('it to be told', () => (told.count === 1 ? true : undefined));
      // Polls go on; with nothing new they say nothing: another version shows the count is exact.
      const next = await publishVersion(store);
      await until('the poll to serve the next', () => (predictor.version === next ? true : undefined));
      await until('it to be told again', () => (told.count >= 2 ? true : undefined));
      expect(told.count).toBe(2);
    } finally {
      await updates.close();
      predictor.close();
    }
  });
});
