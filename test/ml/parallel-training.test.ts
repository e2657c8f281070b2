import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { BatchMaker } from '../../src/ml/batches.js';
import { loadDataset, subset, type DatasetSplits } from '../../src/ml/data/dataset.js';
import { createOptimizer } from '../../src/ml/optimizers.js';
import { ReplicaPool } from '../../src/ml/parallel/replica-pool.js';
import { sliceOf } from '../../src/ml/parallel/shared-step.js';
import { train, type EpochSummary, type NamedTensor } from '../../src/ml/train.js';
import { createTrainStepper } from '../../src/ml/train-step.js';
import { trainParamsSchema, type TrainParamsInput } from '../../src/ml/train-params.js';

let mnist: DatasetSplits;
const params = (input: TrainParamsInput) => trainParamsSchema.parse(input);
const small = (): DatasetSplits => ({ ...mnist, validation: subset(mnist.validation, 0, 100) });

async function trainedWeights(input: TrainParamsInput, threads: number): Promise<Float32Array[]> {
  const { model } = await train({ params: params(input), data: small(), threads });
  const values = model.getWeights().map((w) => w.dataSync() as Float32Array);
  model.dispose();
  return values;
}

function largestDifference(a: Float32Array[], b: Float32Array[]): number {
  let largest = 0;
  a.forEach((values, i) => values.forEach((v, j) => (largest = Math.max(largest, Math.abs(v - b[i]![j]!)))));
  return largest;
}

describe('data-parallel training', () => {
  beforeAll(async () => {
    await initBackend('wasm');
    mnist = await loadDataset('mnist');
  });

  it('when a batch is split over replicas, then the slices cover it in order, unevenly only by one', () => {
    for (const [replicas, count] of [
      [2, 64],
      [2, 1],
      [3, 64],
      [4, 3],
    ] as const) {
      const slices = Array.from({ length: replicas }, (_, r) => sliceOf(r, replicas, count));
      expect(slices[0]![0]).toBe(0);
      expect(slices.at(-1)![1]).toBe(count);
      slices.slice(1).forEach(([first], r) => expect(first).toBe(slices[r]![1]));
      const sizes = slices.map(([first, end]) => end - first);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
  });

  it('when trained twice on 2 threads with the same seed, then the weights are identical, and within float rounding of 1 thread', async () => {
    const input = { epochs: 1, trainSize: 640, seed: 7 };
    const two = await trainedWeights(input, 2);
    expect(await trainedWeights(input, 2)).toEqual(two);
    const one = await trainedWeights(input, 1);
    // Same batches, same mean gradient; only the order of float additions differs.
    expect(largestDifference(one, two)).toBeLessThan(1e-4);
    expect(largestDifference(one, two)).toBeGreaterThan(0);
  });

  it('when the learning rate follows a cosine schedule on 2 threads, then every replica follows it: within float rounding of 1 thread', async () => {
    const input = { epochs: 1, trainSize: 640, seed: 7, learningRateSchedule: 'cosine' as const };
    const one = await trainedWeights(input, 1);
    expect(largestDifference(one, await trainedWeights(input, 2))).toBeLessThan(1e-4);
    // And the schedule did change the run: a constant rate ends elsewhere.
    expect(
      largestDifference(one, await trainedWeights({ ...input, learningRateSchedule: 'constant' }, 1)),
    ).toBeGreaterThan(1e-3);
  });

  it('when the last batch is smaller than the replicas are many, then an empty slice adds nothing and the mean is by image count', async () => {
    // 65 images at batch 64: the last batch holds 1 image, so on 3 threads two slices are empty.
    const input = { epochs: 1, trainSize: 65, seed: 3 };
    const one = await trainedWeights(input, 1);
    expect(largestDifference(one, await trainedWeights(input, 3))).toBeLessThan(1e-5);
  });

  it('when a 2-thread run is resumed from its epoch-1 state, then it ends with the weights of an uninterrupted run', async () => {
    const input = { epochs: 2, trainSize: 640, seed: 11 };
    const uninterrupted = await trainedWeights(input, 2);

    let saved: { history: EpochSummary[]; optimizerWeights: NamedTensor[] } | undefined;
    const first = await train({
      params: params({ ...input, epochs: 1 }),
      data: small(),
      threads: 2,
      onEpochEnd: async (end) => {
        // Copies: the optimizer's state lives on (and changes) after this call.
        const weights = await end.optimizer.getWeights();
        saved = {
          history: end.history,
          optimizerWeights: weights.map((w) => ({
            name: w.name,
            tensor: tf.tensor(w.tensor.dataSync(), w.tensor.shape, w.tensor.dtype),
          })),
        };
      },
    });
    const resumed = await train({
      params: params(input),
      data: small(),
      threads: 2,
      resume: { model: first.model, ...saved! },
    });
    const values = resumed.model.getWeights().map((w) => w.dataSync() as Float32Array);
    resumed.model.dispose();
    tf.dispose(saved!.optimizerWeights.map((w) => w.tensor));
    expect(values).toEqual(uninterrupted);
  });

  it('when a replica cannot start, then the pool fails with the replica named and its reason', async () => {
    // The replica builds the wide CNN from the params, and cannot take the seed CNN's weights.
    const p = params({ epochs: 1, trainSize: 64, architecture: 'wide' });
    const model = buildModel('seed', 1);
    const optimizer = createOptimizer('adam', 0.001);
    const stepper = createTrainStepper(model, optimizer);
    const trainSet = subset(mnist.train, 0, 64);
    const start = ReplicaPool.start({
      threads: 2,
      backend: 'wasm',
      params: p,
      model,
      trainSet,
      stepper,
      maker: new BatchMaker(trainSet, 10),
    });
    await expect(start).rejects.toThrow(/^training replica 1 failed: .*weight/);
    stepper.dispose();
    optimizer.dispose();
    model.dispose();
  });
});
