import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend/index.js';
import { loadDataset, type ImageSet } from '../../src/ml/data/dataset.js';
import { IMAGE_PIXELS, IMAGE_SIDE } from '../../src/ml/image-shape.js';
import { useTestApi } from '../helpers/api.js';
import { pngPixels } from '../helpers/feedback.js';
import { trainAndPublish } from '../helpers/models.js';

const API_KEY = 'samples-test-key-0123456789';
const IMMUTABLE = 'public, max-age=31536000, immutable';

describe('GET /samples/{digit}.png and .json: MNIST test digits to try the service with', () => {
  // With a key that /predict needs too: the samples must still be open to anyone.
  const api = useTestApi('samples', { auth: { apiKey: API_KEY, protectPredict: true } });
  const server = () => api.app.server;
  let test: ImageSet;

  /** The `index`-th test image of `digit`, found in the data set as training reads it. */
  function reference(digit: number, index: number): Uint8Array {
    let seen = 0;
    for (let i = 0; i < test.count; i++)
      if (test.labels[i] === digit && seen++ === index)
        return test.images.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS);
    throw new Error(`MNIST's test set has no image ${index} of digit ${digit}`);
  }
  const countOf = (digit: number) => test.labels.filter((label) => label === digit).length;

  beforeAll(async () => {
    test = (await loadDataset('mnist', { validationSize: 0 })).test;
  });

  it('when a digit is asked for without a key, then it is its first MNIST test image as a 28x28 grayscale PNG, cached for good', async () => {
    for (let digit = 0; digit <= 9; digit++) {
      const res = await request(server()).get(`/samples/${digit}.png`).buffer(true).expect(200);
      expect(res.headers['content-type']).toBe('image/png');
      expect(res.headers['cache-control']).toBe(IMMUTABLE);
      const { format, width, height, channels } = await sharp(res.body).metadata();
      expect({ format, width, height, channels }).toEqual({
        format: 'png',
        width: 28,
        height: 28,
        channels: 1,
      });
      expect(await pngPixels(res.body), `digit ${digit}`).toEqual(new Uint8Array(reference(digit, 0)));
    }
  });

  it("when index picks another of the digit's images, then it is that one, up to the digit's last", async () => {
    for (const [digit, index] of [
      [3, 17],
      [5, countOf(5) - 1],
      [1, countOf(1) - 1],
    ] as const) {
      const res = await request(server())
        .get(`/samples/${digit}.png?index=${index}`)
        .buffer(true)
        .expect(200);
      expect(await pngPixels(res.body), `digit ${digit} index ${index}`).toEqual(
        new Uint8Array(reference(digit, index)),
      );
    }
  });

  it('when zoom is 10, then the PNG is 280x280 and each MNIST pixel is a 10x10 block of it', async () => {
    const res = await request(server()).get('/samples/4.png?index=2&zoom=10').buffer(true).expect(200);
    const { data, info } = await sharp(res.body).greyscale().raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([280, 280]);
    const pixels = reference(4, 2);
    // Counted, not compared with toEqual: a diff of 78,400 values takes minutes to print.
    let unlike = 0;
    for (let i = 0; i < data.length; i++)
      if (data[i] !== pixels[Math.floor(i / 2800) * IMAGE_SIDE + Math.floor((i % 280) / 10)]) unlike++;
    expect(unlike, 'pixels that differ from their MNIST pixel').toBe(0);
  });

  it('when the JSON form is asked for, then it is a /predict body holding the same pixels, 0-255 in 28 rows', async () => {
    const res = await request(server()).get('/samples/3.json?index=5').expect(200);
    expect(res.headers['cache-control']).toBe(IMMUTABLE);
    expect(Object.keys(res.body).sort()).toEqual(['image', 'scale']);
    expect(res.body.scale).toBe('byte');
    expect(res.body.image).toHaveLength(28);
    expect(new Uint8Array(res.body.image.flat())).toEqual(new Uint8Array(reference(3, 5)));
  });

  it.each([
    ['/samples/x.png', 'params.digit', 'must be a digit, 0 to 9'],
    ['/samples/10.png', 'params.digit', 'must be a digit, 0 to 9'],
    ['/samples/-1.png', 'params.digit', 'must be a digit, 0 to 9'],
    ['/samples/.png', 'params.digit', 'must be a digit, 0 to 9'],
    ['/samples/1e0.png', 'params.digit', 'must be a digit, 0 to 9'],
    ['/samples/7.5.png', 'params.digit', 'must be a digit, 0 to 9'],
    ['/samples/x.json', 'params.digit', 'must be a digit, 0 to 9'],
    ['/samples/5.png?index=892', 'querystring.index', 'digit 5 has 892 test images: index must be 0 to 891'],
    [
      '/samples/1.json?index=1135',
      'querystring.index',
      'digit 1 has 1135 test images: index must be 0 to 1134',
    ],
    ['/samples/5.png?index=10000', 'querystring.index', 'must be a whole number, 0 to 9999'],
    ['/samples/5.png?index=-1', 'querystring.index', 'must be a whole number'],
    ['/samples/5.png?index=1.5', 'querystring.index', 'must be a whole number'],
    ['/samples/5.png?index=abc', 'querystring.index', 'must be a whole number'],
    ['/samples/5.png?index=', 'querystring.index', 'must be a whole number'],
    ['/samples/5.png?index=1&index=2', 'querystring.index', 'must be a whole number'],
    ['/samples/5.png?zoom=0', 'querystring.zoom', 'must be a whole number, 1 to 10'],
    ['/samples/5.png?zoom=11', 'querystring.zoom', 'must be a whole number, 1 to 10'],
    ['/samples/5.png?zoom=2.5', 'querystring.zoom', 'must be a whole number, 1 to 10'],
    ['/samples/5.png?scale=2', 'querystring', 'Unrecognized key: "scale"'],
    ['/samples/5.json?zoom=2', 'querystring', 'Unrecognized key: "zoom"'],
  ])('when GET %s, then a 400 names %s', async (path, field, message) => {
    const res = await request(server()).get(path).expect(400);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.message).toContain(message);
    expect(res.body.error.details[0].field).toMatch(new RegExp(`^${field.replace('.', '\\.')}`));
  });

  it('when /openapi.json is read, then both routes are there under the samples tag, with their types and 400', async () => {
    const { paths } = (await request(server()).get('/openapi.json').expect(200)).body;
    const png = paths['/samples/{digit}.png'].get;
    const json = paths['/samples/{digit}.json'].get;
    for (const route of [png, json]) {
      expect(route.tags).toEqual(['samples']);
      expect(Object.keys(route.responses).sort()).toEqual(['200', '400', '404']);
      expect(Object.keys(route.responses['400'].content)).toEqual(['application/json']);
      const digit = route.parameters.find((p: { name: string }) => p.name === 'digit');
      expect(digit).toMatchObject({
        in: 'path',
        required: true,
        schema: { type: 'integer', minimum: 0, maximum: 9 },
      });
    }
    expect(Object.keys(png.responses['200'].content)).toEqual(['image/png']);
    expect(png.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['digit', 'index', 'zoom']);
    expect(Object.keys(json.responses['200'].content)).toEqual(['application/json']);
    expect(json.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['digit', 'index']);
  });

  describe('with a trained model', () => {
    let model: tf.LayersModel;
    beforeAll(async () => {
      await initBackend('wasm');
      // As in predict.test.ts: shifts make the small model tolerant of a PNG's round trip.
      model = await trainAndPublish(api.store, { trainSize: 10_000, augment: true, seed: 1 });
      await api.predictor.refresh();
    }, 120_000);
    afterAll(() => model?.dispose());

    const PER_DIGIT = 20;
    const predict = (body: object | Buffer, type = 'application/json') =>
      request(server())
        .post('/predict')
        .set('authorization', `Bearer ${API_KEY}`)
        .set('content-type', type)
        .send(body as object)
        .expect(200);

    it('when the JSON samples are posted as they come, then /predict answers what the model says of the MNIST pixels', async () => {
      const answers: number[] = [];
      const pixels = new Float32Array(10 * PER_DIGIT * IMAGE_PIXELS);
      for (let digit = 0; digit <= 9; digit++)
        for (let index = 0; index < PER_DIGIT; index++) {
          const sample = (await request(server()).get(`/samples/${digit}.json?index=${index}`).expect(200))
            .body;
          answers.push((await predict(sample)).body.predictions[0].label);
          const at = (digit * PER_DIGIT + index) * IMAGE_PIXELS;
          reference(digit, index).forEach((v, i) => (pixels[at + i] = v / 255));
        }
      const direct = tf.tidy(() =>
        Array.from(
          (model.predict(tf.tensor4d(pixels, [10 * PER_DIGIT, 28, 28, 1])) as tf.Tensor)
            .argMax(-1)
            .dataSync(),
        ),
      );
      expect(answers).toEqual(direct);
    });

    it('when the PNG samples are posted as image/png, then /predict reads nearly all as their digit', async () => {
      let right = 0;
      for (let digit = 0; digit <= 9; digit++)
        for (let index = 0; index < PER_DIGIT; index++) {
          const png = (
            await request(server()).get(`/samples/${digit}.png?index=${index}`).buffer(true).expect(200)
          ).body as Buffer;
          if ((await predict(png, 'image/png')).body.predictions[0].label === digit) right++;
        }
      // The model reads about 95 % of MNIST's test digits right; PNGs of other digits, about 10 %.
      // (An inverted PNG still reads right: /predict turns dark-on-light images round itself.)
      expect(right / (10 * PER_DIGIT)).toBeGreaterThanOrEqual(0.9);
    });
  });
});
