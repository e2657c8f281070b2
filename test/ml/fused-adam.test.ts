import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { autodiffStepper, createTrainStepper, type TrainStepper } from '../../src/ml/train-step.js';

/** Mean gradients of every magnitude Adam meets, zeros and float32 subnormals included. */
function gradients(size: number, steps: number, seed: number): Float32Array[] {
  let state = seed;
  const next = () => (state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  return Array.from({ length: steps }, () => {
    const g = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const pick = next();
      g[i] = pick < 0.05 ? 0 : pick < 0.07 ? 1e-40 * (next() - 0.5) : (next() - 0.5) * 10 ** (6 * next() - 4);
    }
    return g;
  });
}

/** Every weight, moment, accumulated beta and the iteration count, as raw bits. */
async function state(model: tf.LayersModel, optimizer: tf.Optimizer) {
  const bits = (t: tf.Tensor) => Array.from(new Uint32Array(new Float32Array(t.dataSync()).buffer));
  const adam = optimizer as unknown as { accBeta1: tf.Tensor; accBeta2: tf.Tensor };
  const saved = await optimizer.getWeights();
  return {
    weights: model.getWeights().map(bits),
    optimizer: saved.map((w) => ({ name: w.name.replace(/.*?\//, ''), bits: bits(w.tensor) })),
    iterations: optimizer.iterations,
    betas: [bits(adam.accBeta1), bits(adam.accBeta2)],
  };
}

type State = Awaited<ReturnType<typeof state>>;

/** Counts differing bits per part, so a failure reports in a line, not in megabytes of diff. */
function expectSameState(ours: State, theirs: State) {
  const mismatches = (a: number[][], b: number[][]) =>
    a.reduce((n, row, i) => n + row.filter((x, j) => x !== b[i]![j]).length, row0(a, b));
  const row0 = (a: number[][], b: number[][]) =>
    a.length === b.length && a.every((row, i) => row.length === b[i]!.length) ? 0 : Number.NaN;
  expect({
    weights: mismatches(ours.weights, theirs.weights),
    moments: mismatches(
      ours.optimizer.map((w) => w.bits),
      theirs.optimizer.map((w) => w.bits),
    ),
    betas: mismatches(ours.betas, theirs.betas),
  }).toEqual({ weights: 0, moments: 0, betas: 0 });
  expect(ours.optimizer.map((w) => w.name)).toEqual(theirs.optimizer.map((w) => w.name));
  expect(ours.iterations).toBe(theirs.iterations);
}

function run(stepper: TrainStepper, steps: Float32Array[]) {
  steps.forEach((g, step) => stepper.apply(g, step));
}

describe('fused Adam', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('when several steps run on wasm, then weights, moments and counters are bit for bit those of tf Adam', async () => {
    const ours = { model: buildModel('seed', 3), optimizer: tf.train.adam(0.003) };
    const theirs = { model: buildModel('seed', 3), optimizer: tf.train.adam(0.003) };
    const fused = createTrainStepper(ours.model, ours.optimizer);
    const reference = autodiffStepper(theirs.model, theirs.optimizer);
    const steps = gradients(fused.gradientSize, 6, 1);
    const batch = {
      images: tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 8) as tf.Tensor4D,
      labels: tf.oneHot([1, 2, 3, 4], 10).toFloat() as tf.Tensor2D,
    };
    const lossOf = (stepper: TrainStepper) =>
      stepper.gradients(batch, new Float32Array(stepper.gradientSize), { step: 0, replica: 0 }).lossSum;
    // A forward pass before each step: the wasm conv and dense kernels keep the weights they
    // packed, keyed by buffer, so weights written in place would go unseen by the next one.
    steps.forEach((g, step) => {
      lossOf(fused);
      fused.apply(g, step);
    });
    run(reference, steps);
    const expected = await state(theirs.model, theirs.optimizer);
    expectSameState(await state(ours.model, ours.optimizer), expected);
    const fresh = buildModel('seed', 3);
    fresh.setWeights(theirs.model.getWeights());
    expect(lossOf(fused)).toBe(lossOf(createTrainStepper(fresh, tf.train.adam(0.003))));
    fresh.dispose();
    tf.dispose([batch.images, batch.labels]);
    // The weights moved: the comparison is not between two untouched models.
    const untouched = buildModel('seed', 3);
    expect(untouched.getWeights()[0]!.dataSync()).not.toEqual(theirs.model.getWeights()[0]!.dataSync());
    untouched.dispose();
    for (const m of [ours.model, theirs.model]) m.dispose();
  });

  it('when resumed from a checkpoint of tf Adam, then fused steps match tf steps and leave the checkpoint intact', async () => {
    const first = { model: buildModel('seed', 4), optimizer: tf.train.adam(0.01, 0.8, 0.95, 1e-6) };
    const stepper = autodiffStepper(first.model, first.optimizer);
    const steps = gradients(stepper.gradientSize, 7, 2);
    run(stepper, steps.slice(0, 3));
    const checkpoint = (await first.optimizer.getWeights()).map((w) => ({
      name: w.name,
      tensor: tf.clone(w.tensor),
    }));
    const checkpointBits = checkpoint.map((w) => Array.from(w.tensor.dataSync()));
    const weights = first.model.getWeights().map((w) => w.dataSync().slice());

    const resume = async (fused: boolean) => {
      const model = buildModel('seed', 99);
      model.setWeights(weights.map((w, i) => tf.tensor(w, model.getWeights()[i]!.shape)));
      const optimizer = tf.train.adam(0.01, 0.8, 0.95, 1e-6);
      await optimizer.setWeights(checkpoint.map((w) => ({ name: w.name, tensor: w.tensor })));
      run((fused ? createTrainStepper : autodiffStepper)(model, optimizer), steps.slice(3));
      return { model, optimizer };
    };
    const ours = await resume(true);
    const theirs = await resume(false);
    expect(ours.optimizer.iterations).toBe(7);
    expectSameState(await state(ours.model, ours.optimizer), await state(theirs.model, theirs.optimizer));
    const changed = checkpoint.filter((w, i) =>
      w.tensor.dataSync().some((x, j) => x !== checkpointBits[i]![j]),
    );
    expect(changed.map((w) => w.name)).toEqual([]);
    for (const m of [first.model, ours.model, theirs.model]) m.dispose();
    tf.dispose(checkpoint.map((w) => w.tensor));
  });

  it("when the optimizer is not Adam, then apply is tf's own update", async () => {
    const ours = { model: buildModel('seed', 5), optimizer: tf.train.momentum(0.01, 0.9) };
    const theirs = { model: buildModel('seed', 5), optimizer: tf.train.momentum(0.01, 0.9) };
    const steps = gradients(ours.model.countParams(), 3, 3);
    run(createTrainStepper(ours.model, ours.optimizer), steps);
    run(autodiffStepper(theirs.model, theirs.optimizer), steps);
    expect(ours.model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(
      theirs.model.getWeights().map((w) => Array.from(w.dataSync())),
    );
    for (const m of [ours.model, theirs.model]) m.dispose();
  });

  it('when fused steps run, then no tensor is left behind', async () => {
    const model = buildModel('seed', 6);
    const optimizer = tf.train.adam(0.001);
    const stepper = createTrainStepper(model, optimizer);
    const steps = gradients(stepper.gradientSize, 4, 4);
    stepper.apply(steps[0]!, 0); // creates the moments
    const before = tf.memory().numTensors;
    run(stepper, steps.slice(1));
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
    optimizer.dispose();
  });
});
