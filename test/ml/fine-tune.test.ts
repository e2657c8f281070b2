import type * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend, type BackendInfo } from '../../src/ml/backend/index.js';
import { BaseModelError, takeBaseWeights, type BaseModel } from '../../src/ml/base-weights.js';
import { loadDataset, subset, type DatasetSplits } from '../../src/ml/data/dataset.js';
import { evaluate } from '../../src/ml/evaluate.js';
import { runTraining } from '../../src/ml/run-training.js';
import { train } from '../../src/ml/train.js';
import { trainParamsSchema, type TrainParamsInput } from '../../src/ml/train-params.js';
import { pickLabels, writeIdxDataset } from '../helpers/idx-files.js';
import { useTempDir } from '../helpers/temp-dir.js';

let mnist: DatasetSplits;
const params = (input: TrainParamsInput) => trainParamsSchema.parse(input);
const small = (): DatasetSplits => ({ ...mnist, validation: subset(mnist.validation, 0, 100) });
const valuesOf = (weights: tf.Tensor[]) => weights.map((w) => Array.from(w.dataSync()));

function largestDifference(a: number[][], b: number[][]): number {
  let largest = 0;
  a.forEach((values, i) => values.forEach((v, j) => (largest = Math.max(largest, Math.abs(v - b[i]![j]!)))));
  return largest;
}

describe('fine-tuning from a base model', () => {
  const dir = useTempDir('fine-tune');
  let backend: BackendInfo;
  /** The seed CNN after one epoch on 2,000 digits: version 1, as far as these runs know. */
  let base: BaseModel;

  beforeAll(async () => {
    backend = await initBackend('wasm');
    mnist = await loadDataset('mnist');
    const trained = await train({ params: params({ epochs: 1, trainSize: 2_000, seed: 1 }), data: small() });
    base = { model: trained.model, version: 1 };
  });
  afterAll(() => base.model.dispose());

  it('when the classes are the same, then every layer takes the base weights', () => {
    const model = buildModel('seed', 2);
    takeBaseWeights(model, base);
    expect(valuesOf(model.getWeights())).toEqual(valuesOf(base.model.getWeights()));
    model.dispose();
  });

  it("when fine-tuned on the same classes, then the first batch's loss is the base model's on it, far below a fresh start's", async () => {
    // One batch: its loss is computed before the run's only update, on the starting weights.
    const oneBatch = params({ epochs: 1, trainSize: 64, batchSize: 64, seed: 2, baseVersion: 1 });
    const tuned = await train({ params: oneBatch, data: small(), base });
    const fresh = await train({ params: { ...oneBatch, baseVersion: undefined }, data: small() });
    const baseLoss = evaluate(base.model, subset(mnist.train, 0, 64)).loss;
    expect(tuned.history[0]!.loss).toBeCloseTo(baseLoss, 4);
    expect(baseLoss).toBeLessThan(1);
    expect(fresh.history[0]!.loss).toBeGreaterThan(2);
    tuned.model.dispose();
    fresh.model.dispose();
  });

  it('when the data set has another number of classes, then all layers but the last take the base weights and the last keeps its seeded start', () => {
    const model = buildModel('seed', 5, 3);
    const fresh = buildModel('seed', 5, 3);
    takeBaseWeights(model, base);
    const ours = valuesOf(model.getWeights());
    // The last layer's kernel and bias are the last two weights.
    expect(ours.slice(0, -2)).toEqual(valuesOf(base.model.getWeights()).slice(0, -2));
    expect(ours.slice(-2)).toEqual(valuesOf(fresh.getWeights()).slice(-2));
    expect(model.getWeights().at(-2)!.shape).toEqual([84, 3]);
    model.dispose();
    fresh.dispose();
  });

  it('when run on a data set of 3 classes, then the model outputs 3 classes and the report records the base version', async () => {
    await writeIdxDataset(dir, {
      train: pickLabels(mnist.train, [3, 5, 8], 600),
      test: pickLabels(mnist.test, [3, 5, 8], 150),
      classes: ['three', 'five', 'eight'],
    });
    const { model, report } = await runTraining(params({ dataset: dir, epochs: 1, baseVersion: 1 }), {
      backend,
      base,
    });
    expect(model.outputs[0]!.shape).toEqual([null, 3]);
    expect(report).toMatchObject({ classes: ['three', 'five', 'eight'], params: { baseVersion: 1 } });
    expect(report.confusion.map((row) => row.length)).toEqual([3, 3, 3]);
    model.dispose();
  });

  it('when the architecture does not match the base, then a BaseModelError says which layer differs', async () => {
    const run = train({
      params: params({ architecture: 'wide', epochs: 1, trainSize: 64 }),
      data: small(),
      base,
    });
    await expect(run).rejects.toThrow(BaseModelError);
    await expect(run).rejects.toThrow(
      "cannot fine-tune from model version 1: its layers do not match architecture 'wide' (the base has 8 layers, the architecture 10); use the architecture it was trained with",
    );
    const wideBase = { model: buildModel('wide', 1), version: 4 };
    const seed = buildModel('seed', 1);
    expect(() => takeBaseWeights(seed, wideBase)).toThrow(
      /^cannot fine-tune from model version 4: its layers do not match architecture 'seed' \(/,
    );
    seed.dispose();
    wideBase.model.dispose();
  });

  it('when fine-tuned on 2 threads, then twice gives the same weights, within float rounding of 1 thread: every replica starts from the base', async () => {
    const input = params({ epochs: 1, trainSize: 640, seed: 9, baseVersion: 1 });
    const weights = async (threads: number) => {
      const { model } = await train({ params: input, data: small(), base, threads });
      const values = valuesOf(model.getWeights());
      model.dispose();
      return values;
    };
    const two = await weights(2);
    expect(await weights(2)).toEqual(two);
    // A replica that started from its own seeded weights would send gradients far from these.
    expect(largestDifference(await weights(1), two)).toBeLessThan(1e-4);
  });

  it('when resuming a checkpoint, then the run continues from it and the base is not used', async () => {
    const checkpoint = buildModel('seed', 3);
    const before = valuesOf(checkpoint.getWeights());
    const epoch = { epoch: 1, loss: 1, accuracy: 0.5, lastBatchLoss: 1, valLoss: null, valAccuracy: null };
    const { model } = await train({
      params: params({ epochs: 1, trainSize: 64, baseVersion: 1 }),
      data: small(),
      base,
      resume: { model: checkpoint, history: [{ ...epoch, seconds: 1, imagesPerSecond: 64 }] },
    });
    expect(model).toBe(checkpoint);
    expect(valuesOf(model.getWeights())).toEqual(before);
    model.dispose();
  });
});
