import * as tf from '@tensorflow/tfjs';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import { digitSpritePng } from '../../src/registry/digit-sprite.js';
import {
  ModelMetadataError,
  ModelNotFoundError,
  type ModelMetadata,
  type ModelStore,
  type PublishOptions,
} from '../../src/registry/model-store.js';
import { gate } from '../helpers/gate.js';
import { fileBackend, s3Backend, type ModelStoreBackend } from '../helpers/model-store-backends.js';
import { trainingReportFixture } from '../helpers/training-report.js';

/**
 * The promises of ModelStore (model-store.ts), checked on every backend with the same tests. Races
 * are forced by gates inside the real stores (model-store-backends.ts), never by timing.
 */
describe.each<ModelStoreBackend>([fileBackend(), s3Backend()])('$name', (backend) => {
  backend.useSuite();
  let store: ModelStore;

  beforeAll(async () => {
    await initBackend('wasm');
  });

  beforeEach(() => {
    backend.fresh();
    store = backend.open();
  });

  /** Publishes buildModel('seed', seed) with jobId `seed-<seed>`. */
  async function publishSeed(
    seed: number,
    on = store,
    options: Partial<PublishOptions> = {},
  ): Promise<ModelMetadata> {
    const model = buildModel('seed', seed);
    try {
      return await on.publish(model, trainingReportFixture(), { jobId: `seed-${seed}`, ...options });
    } finally {
      model.dispose();
    }
  }

  function weightsOf(model: tf.LayersModel): Float32Array[] {
    return model.getWeights().map((w) => w.dataSync() as Float32Array);
  }

  /** The version is listed as published and loads with the weights of the model its job id names. */
  async function expectComplete(metadata: ModelMetadata, on = store): Promise<void> {
    expect(await on.get(metadata.version)).toEqual(metadata);
    const expected = buildModel('seed', Number(metadata.jobId?.replace('seed-', '')));
    const loaded = await on.load(metadata.version);
    try {
      expect(weightsOf(loaded)).toEqual(weightsOf(expected));
    } finally {
      expected.dispose();
      loaded.dispose();
    }
  }

  const versionsOf = async (on = store) => (await on.list()).map((m) => m.version);

  /** Stored files that belong neither to a visible version nor to a claim marker. */
  async function strays(): Promise<string[]> {
    const visible = new Set((await versionsOf()).map(String));
    return (await backend.stored()).filter(
      (name) => !name.startsWith('.claims/') && !visible.has(name.split('/')[0]!),
    );
  }

  describe('publish', () => {
    it('when models are published into an empty store, then they become versions 1 and 2, listed, latest and found by job', async () => {
      expect(await store.list()).toEqual([]);
      expect(await store.latest()).toBeNull();
      expect(await store.findByJob('seed-2')).toBeNull();

      const first = await publishSeed(1);
      const second = await publishSeed(2);
      expect([first.version, second.version]).toEqual([1, 2]);
      expect(second).toMatchObject({ jobId: 'seed-2', ...trainingReportFixture() });
      expect(await store.list()).toEqual([first, second]);
      expect(await store.latest()).toEqual(second);
      expect(await store.findByJob('seed-1')).toEqual(first);
      await expectComplete(first);
      await expectComplete(second);
      await store.probe();
    });

    it('when a published version is loaded, then it predicts exactly like the model that was published, and its sprite is the one given', async () => {
      const model = buildModel('seed', 7);
      const report = trainingReportFixture();
      const images = new Uint8Array(report.misclassified.length * IMAGE_PIXELS).map((_, i) => i % 256);
      const { version } = await store.publish(model, report, { jobId: null, misclassifiedImages: images });
      const loaded = await store.load(version);
      const batch = tf.randomUniform([16, 28, 28, 1], 0, 1, 'float32', 3);
      const predict = (m: tf.LayersModel) => tf.tidy(() => (m.predict(batch) as tf.Tensor).dataSync());
      try {
        expect(predict(loaded)).toEqual(predict(model));
      } finally {
        batch.dispose();
        loaded.dispose();
      }
      expect(await store.misclassifiedSprite(version)).toEqual(
        await digitSpritePng(images, report.misclassified.length),
      );

      const { version: without } = await store.publish(model, report, { jobId: null });
      model.dispose();
      expect(await store.misclassifiedSprite(without)).toBeNull();
    });

    it('when the report is not storable (a NaN loss), then publish rejects naming the field before any store traffic', async () => {
      const model = buildModel('seed', 1);
      const report = trainingReportFixture({ loss: { train: Number.NaN, validation: null, test: 0.1 } });
      await expect(store.publish(model, report, { jobId: null })).rejects.toThrow(
        expect.objectContaining({
          name: 'ModelMetadataError',
          message: expect.stringContaining('loss.train'),
        }),
      );
      const wrongPixels = { jobId: null, misclassifiedImages: new Uint8Array(3) };
      await expect(store.publish(model, trainingReportFixture(), wrongPixels)).rejects.toThrow(
        ModelMetadataError,
      );
      model.dispose();
      expect(await backend.traffic()).toEqual([]);
    });
  });

  describe('numbers', () => {
    it('when a version is removed, then it disappears at once, a second removal says false, and its number is never used again', async () => {
      await publishSeed(1);
      await publishSeed(2);
      expect(await store.remove(2)).toBe(true);

      expect(await versionsOf()).toEqual([1]);
      expect(await store.get(2)).toBeNull();
      expect((await store.latest())?.version).toBe(1);
      await expect(store.load(2)).rejects.toThrow(ModelNotFoundError);
      expect(await store.remove(2)).toBe(false);
      expect(await strays()).toEqual([]);
      expect((await publishSeed(3)).version).toBe(3);
    });

    it('when a publication fails after claiming its number, then nothing of it is visible or left, and the number is never used again', async () => {
      const hooks = { failAfterClaim: true };
      const failing = backend.open(hooks);
      await publishSeed(1);
      await expect(publishSeed(2, failing)).rejects.toThrow(/injected/);
      expect(hooks.failAfterClaim).toBe(false);

      expect(await versionsOf()).toEqual([1]);
      expect(await store.get(2)).toBeNull();
      expect(await strays()).toEqual([]);
      const next = await publishSeed(3, failing);
      expect(next.version).toBe(3);
      await expectComplete(next);
    });

    it.runIf(backend.forgetCounter)(
      'when the shared counter is lost, then the claims left in the store keep every number from being used again',
      async () => {
        await publishSeed(1);
        await publishSeed(2);
        await publishSeed(3);
        expect(await store.remove(3)).toBe(true);
        await backend.forgetCounter!();
        expect((await publishSeed(4)).version).toBe(4);
        await backend.forgetCounter!();
        expect((await publishSeed(5, backend.open())).version).toBe(5);
      },
    );

    it('when three store instances publish six models at once, then each gets its own number and all six are visible and complete', async () => {
      const instances = [backend.open(), backend.open(), backend.open()];
      const published = await Promise.all(
        [1, 2, 3, 4, 5, 6].map((seed) => publishSeed(seed, instances[seed % 3])),
      );
      expect(published.map((m) => m.version).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
      for (const reader of instances) {
        expect((await reader.list()).map((m) => m.jobId).sort()).toEqual(
          [1, 2, 3, 4, 5, 6].map((s) => `seed-${s}`),
        );
      }
      for (const metadata of published) await expectComplete(metadata, instances[metadata.version % 3]);
    });
  });

  describe('visibility', () => {
    it('when a publication is held with its model files stored, then no reader sees its version until it completes', async () => {
      await publishSeed(1);
      const holdPublish = gate();
      const publishing = publishSeed(2, backend.open({ holdPublish }));
      await holdPublish.arrived;

      const pending = (await backend.stored()).filter((n) => n.endsWith('model.json') && !n.startsWith('1/'));
      expect(pending).toHaveLength(1);
      const reader = backend.open();
      expect(await versionsOf(reader)).toEqual([1]);
      expect(await reader.get(2)).toBeNull();
      expect((await reader.latest())?.version).toBe(1);
      expect(await reader.findByJob('seed-2')).toBeNull();
      await expect(reader.load(2)).rejects.toThrow(ModelNotFoundError);
      expect(await reader.misclassifiedSprite(2)).toBeNull();
      expect(await reader.remove(2)).toBe(false);

      holdPublish.open();
      const second = await publishing;
      expect(second.version).toBe(2);
      expect(await versionsOf(reader)).toEqual([1, 2]);
      await expectComplete(second, reader);
    });

    it("when a version's metadata is corrupt or names another version, then list() and latest() skip it and get() and load() throw ModelMetadataError", async () => {
      const first = await publishSeed(1);
      await publishSeed(2);
      await backend.writeMetadata(2, '{"version": 2, "trunc');
      await backend.writeMetadata(5, `${JSON.stringify(first)}\n`);

      expect(await versionsOf()).toEqual([1]);
      expect((await store.latest())?.version).toBe(1);
      await expect(store.get(2)).rejects.toThrow(ModelMetadataError);
      await expect(store.get(2)).rejects.toThrow(/version 2: .*metadata\.json is not valid JSON/);
      await expect(store.get(5)).rejects.toThrow(/says it is version 1/);
      await expect(store.load(2)).rejects.toThrow(ModelMetadataError);
      // Numbers seen in the store are not handed out again, visible or not.
      expect((await publishSeed(6)).version).toBe(6);
    });
  });

  describe('removal during a load', () => {
    it("when a version is removed between a load's metadata read and its model read, then the load rejects with ModelNotFoundError", async () => {
      const { version } = await publishSeed(1);
      const holdLoad = gate();
      const loading = backend.open({ holdLoad }).load(version);
      const verdict = loading.then(
        (model) => {
          model.dispose();
          return 'loaded';
        },
        (err: unknown) => err,
      );
      await holdLoad.arrived;

      expect(await store.remove(version)).toBe(true);
      holdLoad.open();
      expect(await verdict).toBeInstanceOf(ModelNotFoundError);
    });

    it('when a removal is under way while a load reads the model, then the load gets the whole model and the version is gone after', async () => {
      const published = await publishSeed(1);
      const hooks = { holdLoad: gate(), holdRemove: gate() };
      const instance = backend.open(hooks);
      const loading = instance.load(published.version);
      await hooks.holdLoad.arrived;
      const removing = instance.remove(published.version);
      await hooks.holdRemove.arrived;

      hooks.holdLoad.open();
      const loaded = await loading;
      const expected = buildModel('seed', 1);
      try {
        expect(weightsOf(loaded)).toEqual(weightsOf(expected));
      } finally {
        loaded.dispose();
        expected.dispose();
      }
      hooks.holdRemove.open();
      expect(await removing).toBe(true);
      expect(await store.get(published.version)).toBeNull();
      await expect(store.load(published.version)).rejects.toThrow(ModelNotFoundError);
      expect(await strays()).toEqual([]);
    });
  });

  describe('cleanStaging', () => {
    it('when a crashed publication left files, then cleanStaging() deletes them once old, and never a visible version', async () => {
      const kept = await publishSeed(1);
      await backend.leaveCrashLeftover();
      expect(await strays()).not.toEqual([]);
      expect(await store.cleanStaging(60_000)).toEqual([]);
      expect(await strays()).not.toEqual([]);

      await backend.age(3_600_000);
      expect(await store.cleanStaging(60_000)).toHaveLength(1);
      expect(await strays()).toEqual([]);
      expect(await versionsOf()).toEqual([1]);
      await expectComplete(kept);
      expect(await store.cleanStaging(60_000)).toEqual([]);
    });
  });

  describe('version checks', () => {
    it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53])(
      'when asked for version %s, then every method throws a RangeError',
      async (version) => {
        await expect(store.get(version)).rejects.toThrow(RangeError);
        await expect(store.load(version)).rejects.toThrow(/must be a positive integer/);
        await expect(store.misclassifiedSprite(version)).rejects.toThrow(RangeError);
        await expect(store.remove(version)).rejects.toThrow(RangeError);
      },
    );

    it('when asked for a version that does not exist, then get() is null, load() rejects with ModelNotFoundError and remove() is false', async () => {
      expect(await store.get(3)).toBeNull();
      await expect(store.load(3)).rejects.toThrow(ModelNotFoundError);
      await expect(store.load(3)).rejects.toThrow('Model version 3 does not exist');
      expect(await store.misclassifiedSprite(3)).toBeNull();
      expect(await store.remove(3)).toBe(false);
    });
  });
});
