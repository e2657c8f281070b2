import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend/index.js';
import { createOptimizer, learningRateAt, setLearningRate } from '../../src/ml/optimizers.js';

describe('learning-rate schedules', () => {
  beforeAll(() => initBackend('wasm'));

  const params = { learningRate: 0.01, epochs: 4 };

  it('when the schedule is constant, then every step has the learning rate', () => {
    for (const step of [0, 7, 399, 400])
      expect(learningRateAt({ ...params, learningRateSchedule: 'constant' }, step, 100)).toBe(0.01);
  });

  it('when the schedule is cosine, then it starts at the rate, halves midway, ends at 0 and only falls', () => {
    const cosine = { ...params, learningRateSchedule: 'cosine' as const };
    const rates = Array.from({ length: 401 }, (_, step) => learningRateAt(cosine, step, 100));
    expect(rates[0]).toBe(0.01);
    expect(rates[200]).toBeCloseTo(0.005, 12);
    expect(rates[400]).toBeCloseTo(0, 12);
    rates.slice(1).forEach((rate, i) => expect(rate).toBeLessThan(rates[i]!));
  });

  it.each(['adam', 'sgd', 'momentum', 'rmsprop'] as const)(
    'when the rate of %s is set to 0, then its next update leaves the weights as they are',
    (name) => {
      const optimizer = createOptimizer(name, 0.1);
      const weight = tf.variable(tf.tensor1d([1, -2, 3]));
      const update = () =>
        optimizer.applyGradients({ [weight.name]: tf.tensor1d([0.5, 0.5, -0.5]) } as tf.NamedTensorMap);
      update();
      const before = Array.from(weight.dataSync());
      expect(before).not.toEqual([1, -2, 3]);
      setLearningRate(optimizer, 0);
      update();
      expect(Array.from(weight.dataSync())).toEqual(before);
      optimizer.dispose();
      weight.dispose();
    },
  );
});
