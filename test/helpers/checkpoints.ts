import * as tf from '@tensorflow/tfjs';
import { buildModel } from '../../src/ml/architectures.js';
import type { Architecture } from '../../src/ml/train-params.js';
import type { EpochSummary } from '../../src/ml/train.js';
import type { Checkpoints } from '../../src/worker/checkpoints.js';

/** A made-up but well-formed record of epoch `epoch`: recognisable when a job resumes from it. */
export const epochRecord = (epoch: number): EpochSummary => ({
  epoch,
  loss: 1 / epoch,
  accuracy: 0.5,
  lastBatchLoss: 1 / epoch,
  valLoss: null,
  valAccuracy: null,
  seconds: 1,
  imagesPerSecond: 1000,
});

/**
 * Saves epochs 1..n (or `from`..n) of job `id` as a training run would: the model (as
 * `architecture` and `seed` build it), an Adam optimizer that has taken a step (so it has
 * moments), and the history.
 */
export async function saveEpochs(
  checkpoints: Checkpoints,
  id: string,
  n: number,
  {
    architecture = 'seed',
    seed = 1,
    from = 1,
  }: { architecture?: Architecture; seed?: number; from?: number } = {},
): Promise<void> {
  const model = buildModel(architecture, seed);
  const optimizer = tf.train.adam();
  const x = tf.zeros([1, 28, 28, 1]);
  optimizer.minimize(() => tf.mean(model.apply(x) as tf.Tensor) as tf.Scalar);
  try {
    for (let epoch = from; epoch <= n; epoch++) {
      const history = Array.from({ length: epoch }, (_, i) => epochRecord(i + 1));
      await checkpoints.save(id, { model, optimizer, history });
    }
  } finally {
    x.dispose();
    optimizer.dispose();
    model.dispose();
  }
}
