import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { inferencePlan } from '../../src/ml/inference-plan.js';

/** Logits from the plan and from the Layers API for the same random batch. */
function bothWays(model: tf.LayersModel, batch: number): { plan: Float32Array; layers: Float32Array } {
  const forward = inferencePlan(model);
  return tf.tidy(() => {
    const input = tf.randomUniform([batch, 28, 28, 1], 0, 1, 'float32', 7) as tf.Tensor4D;
    return {
      plan: forward(input).dataSync() as Float32Array,
      layers: (model.predict(input) as tf.Tensor).dataSync() as Float32Array,
    };
  });
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((worst, v, i) => Math.max(worst, Math.abs(v - b[i]!)), 0);
}

describe('inferencePlan', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it.each(['seed', 'wide'] as const)(
    'when the %s architecture runs as fused ops, then its logits equal the Layers API on a batch of 16',
    (architecture) => {
      const model = buildModel(architecture, 3);
      const { plan, layers } = bothWays(model, 16);
      expect(plan).toHaveLength(16 * 10);
      expect(maxDifference(plan, layers)).toBeLessThan(1e-5);
      model.dispose();
    },
  );

  it('when the model has a layer the plan does not know, then it falls back to the Layers API and agrees', () => {
    const model = tf.sequential({
      layers: [
        tf.layers.flatten({ inputShape: [28, 28, 1] }),
        tf.layers.dense({ units: 10, activation: 'tanh' }),
      ],
    });
    const { plan, layers } = bothWays(model, 4);
    expect(maxDifference(plan, layers)).toBe(0);
    model.dispose();
  });

  it('when a batch is predicted, then no tensor is left behind', () => {
    const model = buildModel('seed', 1);
    const forward = inferencePlan(model);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) tf.tidy(() => forward(tf.zeros([2, 28, 28, 1])).dataSync());
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
