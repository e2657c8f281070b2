import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { loadDataset, subset, type DatasetSplits } from '../../src/ml/data/dataset.js';
import { train, type EpochSummary, type NamedTensor } from '../../src/ml/train.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';

let data: DatasetSplits;

describe('training resumed from a checkpoint', () => {
  beforeAll(async () => {
    await initBackend('wasm');
    const mnist = await loadDataset('mnist');
    data = { ...mnist, validation: subset(mnist.validation, 0, 50) };
  });

  // Dropout masks follow the step number and Adam's state survives getWeights/setWeights, so
  // stopping after epoch 1 and resuming must not change a single bit.
  it.each(['seed', 'wide'] as const)(
    'when a %s run resumes after epoch 1, then its weights equal those of the unbroken run',
    async (architecture) => {
      const params = trainParamsSchema.parse({
        epochs: 2,
        trainSize: 192,
        batchSize: 32,
        architecture,
        seed: 3,
      });
      let checkpoint: { weights: tf.Tensor[]; optimizer: NamedTensor[]; history: EpochSummary[] } | undefined;
      const unbroken = await train({
        params,
        data,
        onEpochEnd: async ({ epoch, model, optimizer, history }) => {
          if (epoch !== 1) return;
          const saved = await optimizer.getWeights();
          checkpoint = {
            weights: model.getWeights().map((w) => tf.clone(w)),
            optimizer: saved.map((w) => ({ name: w.name, tensor: tf.clone(w.tensor) })),
            history,
          };
        },
      });
      // As a checkpoint loads it: the same config (dropout seeds included), the saved weights.
      const model = buildModel(architecture, params.seed);
      model.setWeights(checkpoint!.weights);
      const resumed = await train({
        params,
        data,
        resume: { model, history: checkpoint!.history, optimizerWeights: checkpoint!.optimizer },
      });
      const expected = unbroken.model.getWeights().map((w) => w.dataSync());
      const differing = resumed.model
        .getWeights()
        .reduce((n, w, i) => n + w.dataSync().filter((x, j) => x !== expected[i]![j]).length, 0);
      expect(differing).toBe(0);
      expect(resumed.history[1]!.loss).toBe(unbroken.history[1]!.loss);
      unbroken.model.dispose();
      resumed.model.dispose();
      tf.dispose([...checkpoint!.weights, ...checkpoint!.optimizer.map((w) => w.tensor)]);
    },
  );
});
