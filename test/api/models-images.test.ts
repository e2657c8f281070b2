import sharp from 'sharp';
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { loadDataset, type ImageSet } from '../../src/ml/data/dataset.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import { runTraining } from '../../src/ml/run-training.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';
import { ModelMetadataError } from '../../src/registry/model-store.js';
import { useTestApi } from '../helpers/api.js';
import { trainingReportFixture } from '../helpers/training-report.js';

/** Raw 8-bit pixels of a PNG, to compare with the data set's bytes. */
async function pixelsOf(png: Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(png).greyscale().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

describe("a version's misclassified test digits as images", () => {
  const api = useTestApi('models-images');
  let test: ImageSet;
  const testImage = (index: number) =>
    Buffer.from(test.images.subarray(index * IMAGE_PIXELS, (index + 1) * IMAGE_PIXELS));

  beforeAll(async () => {
    await initBackend('wasm');
    test = (await loadDataset('mnist', { validationSize: 0 })).test;
    const model = buildModel('seed', 1);
    try {
      const report = trainingReportFixture();
      // Version 1 keeps its images; version 2 is published as before issue 6, without them.
      const images = Buffer.concat(report.misclassified.map((m) => testImage(m.index)));
      await api.store.publish(model, report, { jobId: null, misclassifiedImages: images });
      await api.store.publish(model, report, { jobId: null });
    } finally {
      model.dispose();
    }
  });

  it('when digit i of a version is asked for, then it is the 28x28 test image at misclassified[i].index', async () => {
    const { misclassified } = (await request(api.app.server).get('/models/1').expect(200)).body as {
      misclassified: { index: number }[];
    };
    for (const [i, item] of misclassified.entries()) {
      const res = await request(api.app.server).get(`/models/1/misclassified/${i}.png`).expect(200);
      expect(res.headers['content-type']).toBe('image/png');
      expect(res.headers['cache-control']).toContain('immutable');
      const png = await pixelsOf(res.body as Buffer);
      expect([png.width, png.height]).toEqual([28, 28]);
      expect(png.data.equals(testImage(item.index))).toBe(true);
    }
  });

  it('when the sprite is asked for, then it holds every digit in metadata order, 28 px apart', async () => {
    const res = await request(api.app.server).get('/models/1/misclassified.png').expect(200);
    const sprite = await pixelsOf(res.body as Buffer);
    expect([sprite.width, sprite.height]).toEqual([28, 56]);
    expect(sprite.data.subarray(IMAGE_PIXELS).equals(testImage(1226))).toBe(true);
  });

  it.each([
    [
      'a digit past the end',
      '/models/1/misclassified/2.png',
      404,
      'misclassified digit 2 of model version 1 not found',
    ],
    [
      'a version published without images',
      '/models/2/misclassified/0.png',
      404,
      'has no misclassified images',
    ],
    ['the sprite of such a version', '/models/2/misclassified.png', 404, 'has no misclassified images'],
    ['a version that does not exist', '/models/9/misclassified/0.png', 404, 'model version 9 not found'],
    ['a negative index', '/models/1/misclassified/-1.png', 400, 'params.index'],
    ['an index that is not a number', '/models/1/misclassified/x.png', 400, 'params.index'],
    ['a path in the index', '/models/1/misclassified/..%2F..%2F1%2Fmetadata.json.png', 400, 'params.index'],
    ['a path in the version', '/models/..%2F1/misclassified/0.png', 400, 'params.version'],
  ])('when it is %s, then the answer is %i naming the problem', async (_name, url, status, message) => {
    const res = await request(api.app.server).get(url);
    expect(res.status).toBe(status);
    expect(res.body.error.message).toContain(message);
  });

  it('when the API document is read, then both image routes are in it, answering PNG or a JSON error', async () => {
    const spec = (await request(api.app.server).get('/openapi.json').expect(200)).body as {
      paths: Record<string, { get: { responses: Record<string, { content: Record<string, unknown> }> } }>;
    };
    for (const path of [
      '/models/{version}/misclassified/{index}.png',
      '/models/{version}/misclassified.png',
    ]) {
      const responses = spec.paths[path]!.get.responses;
      expect(Object.keys(responses['200']!.content)).toEqual(['image/png']);
      expect(Object.keys(responses)).toEqual(expect.arrayContaining(['400', '404']));
    }
  });

  it('when the pixels do not match the report, then publishing fails before anything is written', async () => {
    const model = buildModel('seed', 1);
    try {
      await expect(
        api.store.publish(model, trainingReportFixture(), {
          jobId: null,
          misclassifiedImages: new Uint8Array(10),
        }),
      ).rejects.toThrow(ModelMetadataError);
    } finally {
      model.dispose();
    }
    expect((await api.store.list()).map((m) => m.version)).toEqual([1, 2]);
  });

  it('when a model is trained, then the pixels it hands over are the test images it got wrong', async () => {
    const backend = await initBackend('wasm');
    const { model, report, misclassifiedImages } = await runTraining(
      trainParamsSchema.parse({ epochs: 1, trainSize: 1_000, validationSize: 0 }),
      { backend, misclassifiedLimit: 20 },
    );
    model.dispose();
    expect(report.misclassified).toHaveLength(20);
    expect(misclassifiedImages.length).toBe(20 * IMAGE_PIXELS);
    report.misclassified.forEach((m, i) =>
      expect(
        Buffer.from(misclassifiedImages.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS)).equals(
          testImage(m.index),
        ),
      ).toBe(true),
    );
  });
});
