import { FileModelStore } from '../../src/registry/file-model-store.js';
import { join } from 'node:path';
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { type ModelMetadata } from '../../src/registry/model-store.js';
import { useTestApi, type TestApi } from '../helpers/api.js';
import { trainingReportFixture } from '../helpers/training-report.js';

/**
 * The real store, with a gate a test can shut before one call: the request that makes that call
 * waits there until the test lets it go, so another request runs in full in between.
 */
class GatedStore extends FileModelStore {
  private gates = new Map<string, { reached: () => void; released: Promise<void> }>();

  /** Holds the next call of `method`; `reached` resolves once a request waits at the gate. */
  hold(method: 'get' | 'remove'): { reached: Promise<void>; release: () => void } {
    let release!: () => void;
    let reached!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const atGate = new Promise<void>((r) => (reached = r));
    this.gates.set(method, { reached, released });
    return { reached: atGate, release };
  }

  private async pass(method: string): Promise<void> {
    const gate = this.gates.get(method);
    if (!gate) return;
    this.gates.delete(method);
    gate.reached();
    await gate.released;
  }

  override async get(version: number): Promise<ModelMetadata | null> {
    const found = await super.get(version);
    await this.pass('get');
    return found;
  }

  override async remove(version: number): Promise<boolean> {
    await this.pass('remove');
    return super.remove(version);
  }
}

describe('PUT /models/aliases/:name against DELETE /models/:version', () => {
  let store: GatedStore;
  const api = useTestApi('alias-race', ({ dir }) => {
    store = new GatedStore(join(dir, 'models'));
    return { store };
  });
  const { redis, prefix } = api;
  let app: TestApi['app'];

  async function publish(): Promise<number> {
    const model = buildModel('seed', 1);
    try {
      return (await store.publish(model, trainingReportFixture(), { jobId: null })).version;
    } finally {
      model.dispose();
    }
  }

  /** Starts a request now (supertest sends on then()), answering its response later. */
  const start = (test: request.Test) => test.then((res) => res);

  beforeAll(async () => {
    await initBackend('wasm');
    app = api.app;
  });

  it('when the DELETE runs in full between the PUT finding the version and setting the alias, then the PUT is refused and no alias names the deleted version', async () => {
    const version = await publish();
    const gate = store.hold('get');
    const put = start(request(app.server).put('/models/aliases/production').send({ version }));
    await gate.reached;
    await request(app.server).delete(`/models/${version}`).expect(204);
    gate.release();
    const answer = await put;
    expect(answer.status).toBe(404);
    expect(answer.body.error.message).toBe(`model version ${version} not found: it is being deleted`);
    expect((await request(app.server).get('/models/aliases').expect(200)).body).toEqual({});
  });

  it('when the PUT runs in full between the DELETE checking for aliases and removing the version, then the PUT is refused and the version is deleted', async () => {
    const version = await publish();
    const gate = store.hold('remove');
    const del = start(request(app.server).delete(`/models/${version}`));
    await gate.reached;
    const put = await request(app.server).put('/models/aliases/staging').send({ version });
    expect(put.status).toBe(404);
    gate.release();
    expect((await del).status).toBe(204);
    expect(await store.get(version)).toBeNull();
    expect((await request(app.server).get('/models/aliases').expect(200)).body).toEqual({});
  });

  it('when the alias was set first, then the DELETE is a conflict and nothing is marked: the alias can still move back to it', async () => {
    const version = await publish();
    const other = await publish();
    await request(app.server).put('/models/aliases/production').send({ version }).expect(200);
    await request(app.server).delete(`/models/${version}`).expect(409);
    await request(app.server).put('/models/aliases/production').send({ version: other }).expect(200);
    await request(app.server).put('/models/aliases/production').send({ version }).expect(200);
    await request(app.server).delete('/models/aliases/production').expect(204);
  });

  it('when a version that does not exist is deleted, then it is a 404 and nothing stays marked', async () => {
    await request(app.server).delete('/models/9999').expect(404);
    expect(await redis.sismember(`${prefix}:models:deleted`, '9999')).toBe(0);
  });
});
