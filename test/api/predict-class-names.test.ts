import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileModelStore } from '../../src/registry/file-model-store.js';
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { DIGIT_CLASSES, FASHION_MNIST_CLASSES } from '../../src/ml/data/dataset.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import { useTestApi } from '../helpers/api.js';
import { trainingReportFixture } from '../helpers/training-report.js';

/** A mid-grey square: any model gives it some label, which is all these tests need. */
const image = Array.from({ length: IMAGE_PIXELS }, (_, i) => ((i % 28) * 9) / 255);

describe('POST /predict names each class as the model version records it', () => {
  beforeAll(() => initBackend('wasm'));
  const api = useTestApi('predict-classes');

  async function publish(report = trainingReportFixture()): Promise<number> {
    const model = buildModel('seed', 7);
    try {
      return (await api.store.publish(model, report, { jobId: null })).version;
    } finally {
      model.dispose();
    }
  }

  /** Rewrites a version's metadata.json as versions from before class names were recorded have it. */
  async function forgetClasses(version: number): Promise<void> {
    const file = join((api.store as FileModelStore).dir(version), 'metadata.json');
    const metadata = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    delete metadata.classes;
    await writeFile(file, JSON.stringify(metadata));
  }

  async function predict(version: number) {
    const res = await request(api.app.server).post(`/predict?version=${version}`).send({ image }).expect(200);
    return res.body.predictions[0] as { label: number; class: string; probabilities: number[] };
  }

  it('when a version trained on Fashion-MNIST answers, then `class` is the name of its label', async () => {
    const version = await publish(
      trainingReportFixture({
        classes: [...FASHION_MNIST_CLASSES],
        params: { ...trainingReportFixture().params, dataset: 'fashion-mnist' },
      }),
    );
    const prediction = await predict(version);
    expect(prediction.class).toBe(FASHION_MNIST_CLASSES[prediction.label]);
    expect(prediction.probabilities).toHaveLength(10);
    const listed = await request(api.app.server).get(`/models/${version}`).expect(200);
    expect(listed.body.classes).toEqual(FASHION_MNIST_CLASSES);
  });

  it('when a version from before class names has none, then its data set gives them: digits or Fashion-MNIST', async () => {
    const digits = await publish();
    const fashion = await publish(
      trainingReportFixture({
        classes: [...FASHION_MNIST_CLASSES],
        params: { ...trainingReportFixture().params, dataset: 'fashion-mnist' },
      }),
    );
    await forgetClasses(digits);
    await forgetClasses(fashion);
    expect((await api.store.get(digits))?.classes).toEqual(DIGIT_CLASSES);
    expect((await api.store.get(fashion))?.classes).toEqual(FASHION_MNIST_CLASSES);
    const digit = await predict(digits);
    expect(digit.class).toBe(String(digit.label));
    const garment = await predict(fashion);
    expect(garment.class).toBe(FASHION_MNIST_CLASSES[garment.label]);
  });
});
