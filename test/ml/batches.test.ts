import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend/index.js';
import { BatchMaker, drawShifts } from '../../src/ml/batches.js';
import type { ImageSet } from '../../src/ml/data/dataset.js';
import { createRandom } from '../../src/ml/random.js';

// Three 4x4 images: image i has one bright pixel at row i, column i, value 255.
function tinySet(): ImageSet {
  const images = new Uint8Array(3 * 16);
  for (let i = 0; i < 3; i++) images[i * 16 + i * 4 + i] = 255;
  return { count: 3, height: 4, width: 4, images, labels: new Uint8Array([7, 1, 9]) };
}

const sum = (values: ArrayLike<number>) => Array.from(values).reduce((a, b) => a + b, 0);

describe('BatchMaker', () => {
  beforeAll(() => initBackend('wasm'));

  it('when it makes a batch, then it picks the indexed images, scales pixels to [0, 1] and one-hot encodes labels', () => {
    const maker = new BatchMaker(tinySet(), 10);
    const { images, labels } = maker.make([2, 0, 1], 0, 2);
    expect(images.shape).toEqual([2, 4, 4, 1]);
    const pixels = images.dataSync();
    expect(pixels[2 * 4 + 2]).toBe(1);
    expect(pixels[16 + 0]).toBe(1);
    expect(sum(pixels)).toBe(2);
    expect(labels.argMax(1).arraySync()).toEqual([9, 7]);
    tf.dispose([images, labels]);
  });

  it('when asked to shift, then each image moves by at most the given pixels and keeps its ink', () => {
    const maker = new BatchMaker(tinySet(), 10);
    const random = createRandom(3);
    for (let trial = 0; trial < 20; trial++) {
      const { images, labels } = maker.make([1], 0, 1, drawShifts(1, random, 1));
      const pixels = images.dataSync();
      const at = pixels.indexOf(1);
      // The bright pixel of image 1 sits at (1, 1): a shift of up to 1 keeps it inside a 4x4 image.
      expect(sum(pixels)).toBe(1);
      expect(Math.abs(Math.floor(at / 4) - 1)).toBeLessThanOrEqual(1);
      expect(Math.abs((at % 4) - 1)).toBeLessThanOrEqual(1);
      tf.dispose([images, labels]);
    }
  });

  it('when an image is shifted past its edge, then the ink that leaves is dropped, not wrapped', () => {
    const maker = new BatchMaker(tinySet(), 10);
    // random() = 0 gives the most negative shift in both axes: (-2, -2).
    const { images, labels } = maker.make(
      [0, 2],
      0,
      2,
      drawShifts(2, () => 0, 2),
    );
    const pixels = images.dataSync();
    expect(sum(pixels.slice(0, 16))).toBe(0);
    expect(pixels[16 + 0]).toBe(1);
    tf.dispose([images, labels]);
  });
});
