import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel, outputClasses } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { loadModel, saveModel } from '../../src/ml/model-io.js';
import { SeededDropout } from '../../src/ml/seeded-dropout.js';
import { useTempDir } from '../helpers/temp-dir.js';

describe('architectures', () => {
  const dir = useTempDir('arch');
  beforeAll(() => initBackend('wasm'));

  it("when built as 'seed', then it is the tutorial's CNN layer for layer, 60,074 parameters", () => {
    const model = buildModel('seed', 1);
    expect(model.countParams()).toBe(60_074);
    expect(model.layers.map((l) => l.getClassName())).toEqual([
      'Conv2D',
      'MaxPooling2D',
      'Conv2D',
      'MaxPooling2D',
      'Flatten',
      'Dense',
      'Dense',
      'Dense',
    ]);
    expect(model.layers.map((l) => l.outputShape)).toEqual([
      [null, 26, 26, 6],
      [null, 13, 13, 6],
      [null, 11, 11, 16],
      [null, 5, 5, 16],
      [null, 400],
      [null, 120],
      [null, 84],
      [null, 10],
    ]);
    expect(model.layers.map((l) => l.countParams())).toEqual([60, 0, 880, 0, 0, 48_120, 10_164, 850]);
    // Logits, as the seed's nn.CrossEntropyLoss expects: no softmax in the model.
    expect((model.layers.at(-1)!.getConfig() as { activation: string }).activation).toBe('linear');
    model.dispose();
  });

  it('when built twice with the same seed, then the initial weights are equal; another seed differs', () => {
    const weights = (seed: number) => {
      const model = buildModel('seed', seed);
      const values = model.getWeights().map((w) => Array.from(w.dataSync()));
      model.dispose();
      return values;
    };
    expect(weights(7)).toEqual(weights(7));
    expect(weights(7)).not.toEqual(weights(8));
  });

  it('when built for 3 classes, then only the last layer changes: 3 outputs, and the other layers as for 10', () => {
    for (const architecture of ['seed', 'wide'] as const) {
      const ten = buildModel(architecture, 7);
      const three = buildModel(architecture, 7, 3);
      expect(outputClasses(three)).toBe(3);
      expect(three.layers.at(-1)!.outputShape).toEqual([null, 3]);
      const values = (model: tf.LayersModel) => model.getWeights().map((w) => Array.from(w.dataSync()));
      // The kernel and bias of the last layer are the last two weights.
      expect(values(three).slice(0, -2)).toEqual(values(ten).slice(0, -2));
      if (architecture === 'seed') expect(three.countParams()).toBe(60_074 - 7 * 85);
      ten.dispose();
      three.dispose();
    }
    expect(() => buildModel('seed', 1, 1)).toThrow('a model needs a whole number of classes from 2, got 1');
  });

  it("when built as 'wide', then it maps a batch of 28x28 images to 10 logits with more filters and dropout", () => {
    const model = buildModel('wide', 1);
    const names = model.layers.map((l) => l.getClassName());
    expect(names.filter((n) => n === 'Conv2D')).toHaveLength(3);
    expect(names.filter((n) => n === 'SeededDropout')).toHaveLength(2);
    expect(model.countParams()).toBeGreaterThan(3 * 60_074);
    const out = tf.tidy(() => (model.predict(tf.zeros([3, 28, 28, 1])) as tf.Tensor).shape);
    expect(out).toEqual([3, 10]);
    model.dispose();
  });

  it("when a 'wide' model is saved and loaded, then its custom dropout layer comes back and predictions match", async () => {
    const model = buildModel('wide', 3);
    await saveModel(model, join(dir, 'wide'));
    const loaded = await loadModel(join(dir, 'wide'));
    const x = tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 5);
    const [a, b] = [model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([x, a, b]);
    model.dispose();
    loaded.dispose();
  });

  it('when training, then seeded dropout draws a new mask each batch, the same sequence for the same seed', () => {
    const masks = (seed: number) => {
      const layer = new SeededDropout({ rate: 0.5, seed });
      return tf.tidy(() => {
        const x = tf.ones([200]);
        return [1, 2].map(() => Array.from((layer.apply(x, { training: true }) as tf.Tensor).dataSync()));
      });
    };
    const [first, second] = masks(11);
    expect(first).not.toEqual(second);
    expect(masks(11)).toEqual(masks(11));
    const inference = tf.tidy(() =>
      Array.from((new SeededDropout({ rate: 0.5, seed: 1 }).apply(tf.ones([5])) as tf.Tensor).dataSync()),
    );
    expect(inference).toEqual([1, 1, 1, 1, 1]);
  });
});
