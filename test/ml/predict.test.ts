import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend/index.js';
import { loadDataset, subset, type ImageSet } from '../../src/ml/data/dataset.js';
import { evaluate } from '../../src/ml/evaluate.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import { predictBatch } from '../../src/ml/predict.js';
import { train } from '../../src/ml/train.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';

function asFloats(set: ImageSet, i: number): Float32Array {
  return Float32Array.from(set.images.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS), (v) => v / 255);
}

describe('predictBatch', () => {
  let model: tf.LayersModel;
  let test: ImageSet;
  beforeAll(async () => {
    await initBackend('wasm');
    const data = await loadDataset('mnist');
    test = subset(data.test, 0, 500);
    ({ model } = await train({
      params: trainParamsSchema.parse({ epochs: 1, trainSize: 3000 }),
      data: { ...data, validation: subset(data.validation, 0, 0) },
    }));
  });
  afterAll(() => model.dispose());

  it("when 500 test digits are predicted, then accuracy and errors match the model's own evaluation", () => {
    const images = Array.from({ length: test.count }, (_, i) => asFloats(test, i));
    const predictions = predictBatch(model, images);
    const wrong = predictions.map((p, i) => (p.label === test.labels[i] ? -1 : i)).filter((i) => i >= 0);
    const evaluation = evaluate(model, test);
    expect(1 - wrong.length / test.count).toBeCloseTo(evaluation.accuracy, 10);
    expect(wrong).toEqual(evaluation.misclassified.map((m) => m.index).sort((a, b) => a - b));
    for (const p of predictions) {
      expect(p.probabilities).toHaveLength(10);
      expect(p.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(p.confidence).toBe(Math.max(...p.probabilities));
    }
  });

  it('when an image is predicted alone or in a batch, then the answer is the same', () => {
    const images = Array.from({ length: 16 }, (_, i) => asFloats(test, i));
    const together = predictBatch(model, images);
    images.forEach((image, i) => {
      const alone = predictBatch(model, [image])[0]!;
      expect(alone.label).toBe(together[i]!.label);
      alone.probabilities.forEach((p, c) => expect(p).toBeCloseTo(together[i]!.probabilities[c]!, 5));
    });
  });

  it('when 10,000 predictions run, then no tensor is left behind', () => {
    const before = tf.memory().numTensors;
    const image = asFloats(test, 0);
    for (let i = 0; i < 10_000; i += 100)
      predictBatch(
        model,
        Array.from({ length: 100 }, () => image),
      );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('when an image has the wrong size, then it refuses before touching the model', () => {
    expect(() => predictBatch(model, [new Float32Array(783)])).toThrow(
      'image 0 has 783 values, expected 784',
    );
    expect(predictBatch(model, [])).toEqual([]);
  });
});
