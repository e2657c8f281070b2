import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { biasActivationGrad } from '../../src/ml/relu-bias-grad.js';
import { SeededDropout } from '../../src/ml/seeded-dropout.js';
import { autodiffStepper, createTrainStepper, type StepContext } from '../../src/ml/train-step.js';
import { dropoutMultiplier, dropoutSeed, trainingPlan } from '../../src/ml/training-plan.js';

type Backend = 'wasm' | 'cpu';
type ModelFactory = () => tf.Sequential;
const CONTEXT: StepContext = { step: 3, replica: 1 };

function batchOf(n: number, shape: number[], classes: number, seed: number) {
  return {
    images: tf.randomUniform([n, ...shape], 0, 1, 'float32', seed) as unknown as tf.Tensor4D,
    labels: tf
      .oneHot(tf.randomUniform([n], 0, classes, 'int32', seed + 1) as tf.Tensor1D, classes)
      .toFloat() as tf.Tensor2D,
  };
}

/** A model on `backend` with the weights of `reference` (built once on cpu). */
async function modelOn(backend: Backend, factory: ModelFactory, weights: Float32Array[]) {
  await tf.setBackend(backend);
  const model = factory();
  model.setWeights(weights.map((w, i) => tf.tensor(w, model.getWeights()[i]!.shape)));
  return model;
}

/**
 * The reference: tfjs autodiff through the model's own layers on cpu, with the plan's dropout
 * masks (tf.dropout with the plan's seeds) in place of SeededDropout's own.
 */
function referenceGradients(
  model: tf.Sequential,
  images: tf.Tensor,
  labels: tf.Tensor2D,
  context: StepContext,
) {
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  return tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      let x = images;
      for (const layer of model.layers) {
        if (layer instanceof SeededDropout) {
          const { rate, seed } = layer.getConfig() as { rate: number; seed: number };
          x = tf.dropout(x, rate, undefined, dropoutSeed(seed, context));
        } else {
          x = layer.apply(x, { training: true }) as tf.Tensor;
        }
      }
      return tf.losses.softmaxCrossEntropy(labels, x, undefined, undefined, tf.Reduction.SUM) as tf.Scalar;
    }, variables);
    return {
      loss: value.dataSync()[0]!,
      grads: variables.map((v) => grads[v.name]!.dataSync().slice() as Float32Array),
    };
  });
}

function expectClose(ours: Float32Array, reference: Float32Array, tolerance: number) {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < reference.length; i++) {
    diff = Math.max(diff, Math.abs(ours[i]! - reference[i]!));
    scale = Math.max(scale, Math.abs(reference[i]!));
  }
  expect(diff / (scale || 1)).toBeLessThanOrEqual(tolerance);
}

async function comparePlan(factory: ModelFactory, n: number, backend: Backend) {
  await tf.setBackend('cpu');
  const reference = factory();
  const weights = reference.getWeights().map((w) => w.dataSync().slice() as Float32Array);
  const inputShape = reference.inputs[0]!.shape.slice(1) as number[];
  const classes = reference.outputs[0]!.shape[1]!;
  const batch = batchOf(n, inputShape, classes, 21);
  const expected = referenceGradients(reference, batch.images, batch.labels, CONTEXT);
  const hits = tf.tidy(
    () =>
      tf
        .sum(tf.equal(tf.argMax(reference.predict(batch.images) as tf.Tensor, 1), tf.argMax(batch.labels, 1)))
        .dataSync()[0]!,
  );
  const imageValues = { values: batch.images.dataSync(), shape: batch.images.shape };
  const labelValues = { values: batch.labels.dataSync(), shape: batch.labels.shape };
  tf.dispose([batch.images, batch.labels]);
  reference.dispose();

  const model = await modelOn(backend, factory, weights);
  const plan = trainingPlan(model);
  expect(plan).not.toBeNull();
  const images = tf.tensor4d(imageValues.values, imageValues.shape);
  const labels = tf.tensor2d(labelValues.values, labelValues.shape);
  const size = weights.slice(0, model.trainableWeights.length).reduce((s, w) => s + w.length, 0);
  const flat = new Float32Array(size);
  const before = tf.memory().numTensors;
  const stats = plan!({ images, labels }, flat, CONTEXT);
  expect(tf.memory().numTensors).toBe(before);
  tf.dispose([images, labels]);
  model.dispose();

  expect(stats.lossSum).toBeCloseTo(expected.loss, 3);
  // No dropout in predict: hits compare only where the model has none.
  if (!factory().layers.some((l) => l instanceof SeededDropout)) expect(stats.hits).toBe(hits);
  let offset = 0;
  for (const g of expected.grads) {
    expectClose(flat.subarray(offset, offset + g.length), g, 2e-5);
    offset += g.length;
  }
  expect(offset).toBe(flat.length);
}

let initializerSeed = 100;
const init = () => ({
  kernelInitializer: tf.initializers.glorotUniform({ seed: initializerSeed++ }),
  biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: initializerSeed++ }),
});

const models: Record<string, ModelFactory> = {
  seed: () => buildModel('seed', 7),
  wide: () => buildModel('wide', 7),
  // Odd sizes, 'same' padding, stride 2, linear activations, no bias, a pool that overhangs.
  odd: () =>
    tf.sequential({
      layers: [
        tf.layers.conv2d({
          inputShape: [11, 9, 2],
          filters: 3,
          kernelSize: 3,
          strides: 2,
          padding: 'same',
          activation: 'relu',
          ...init(),
        }),
        tf.layers.conv2d({ filters: 4, kernelSize: [2, 3], activation: 'linear', useBias: false, ...init() }),
        tf.layers.maxPooling2d({ poolSize: 2, padding: 'same' }),
        new SeededDropout({ rate: 0.3, seed: 9 }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 7, activation: 'linear', ...init() }),
        tf.layers.dense({ units: 5, activation: 'relu', ...init() }),
        tf.layers.dense({ units: 3, useBias: false, ...init() }),
      ],
    }),
  // The first layer without weights: nothing asks for the input's gradient.
  'pool first': () =>
    tf.sequential({
      layers: [
        tf.layers.maxPooling2d({ inputShape: [8, 8, 1], poolSize: 2 }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 4, activation: 'relu', ...init() }),
        tf.layers.dense({ units: 3, ...init() }),
      ],
    }),
};

describe('training plan', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it.each([
    ['seed', 16, 'wasm'],
    ['seed', 1, 'wasm'],
    ['seed', 4, 'cpu'],
    ['wide', 3, 'wasm'],
    ['wide', 2, 'cpu'],
    ['odd', 5, 'wasm'],
    ['odd', 1, 'wasm'],
    ['odd', 2, 'cpu'],
    ['pool first', 3, 'wasm'],
  ] as const)(
    'when the %s model trains on %i images on %s, then the gradients equal autodiff on cpu',
    async (name, n, backend) => {
      await comparePlan(models[name]!, n, backend);
    },
  );

  it.each(['seed', 'wide'] as const)(
    'when the %s model comes back from a save (a resumed run), then the plan still takes it',
    async (architecture) => {
      await tf.setBackend('wasm');
      const model = buildModel(architecture, 1);
      let artifacts: tf.io.ModelArtifacts | undefined;
      await model.save(
        tf.io.withSaveHandler(async (a) => {
          artifacts = a;
          return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
        }),
      );
      const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
      expect(trainingPlan(loaded)).not.toBeNull();
      model.dispose();
      loaded.dispose();
    },
  );

  it('when the model has a layer or activation the plan does not know, then the stepper falls back to autodiff', async () => {
    await tf.setBackend('wasm');
    const unknown = [
      tf.sequential({
        layers: [
          tf.layers.dense({ inputShape: [6], units: 4, activation: 'tanh', ...init() }),
          tf.layers.dense({ units: 3, ...init() }),
        ],
      }),
      tf.sequential({
        layers: [
          tf.layers.dense({ inputShape: [6], units: 4, ...init() }),
          tf.layers.batchNormalization(),
          tf.layers.dense({ units: 3, ...init() }),
        ],
      }),
    ];
    for (const model of unknown) {
      expect(trainingPlan(model)).toBeNull();
      const optimizer = tf.train.sgd(0.1);
      const stepper = createTrainStepper(model, optimizer);
      const reference = autodiffStepper(model, optimizer);
      const batch = {
        images: tf.randomNormal([5, 6], 0, 1, 'float32', 3),
        labels: tf.oneHot([0, 1, 2, 1, 0], 3).toFloat(),
      };
      const ours = new Float32Array(stepper.gradientSize);
      const theirs = new Float32Array(stepper.gradientSize);
      const a = stepper.gradients(batch as never, ours, CONTEXT);
      const b = reference.gradients(batch as never, theirs, CONTEXT);
      expect(a).toEqual(b);
      expect(ours).toEqual(theirs);
      tf.dispose([batch.images, batch.labels]);
      optimizer.dispose();
      model.dispose();
    }
  });

  it('when a step is repeated with the same (step, replica), then the dropout masks repeat; other steps or replicas draw others', async () => {
    await tf.setBackend('wasm');
    const model = models.odd!();
    const plan = trainingPlan(model)!;
    const batch = batchOf(4, [11, 9, 2], 3, 5);
    const gradient = (context: StepContext) => {
      const into = new Float32Array(model.countParams());
      plan(batch, into, context);
      return into;
    };
    const first = gradient({ step: 10, replica: 0 });
    expect(gradient({ step: 10, replica: 0 })).toEqual(first);
    expect(gradient({ step: 11, replica: 0 })).not.toEqual(first);
    expect(gradient({ step: 10, replica: 1 })).not.toEqual(first);
    tf.dispose([batch.images, batch.labels]);
    model.dispose();
  });

  it("when the plan drops out with a seed, then its output is tf.dropout's with that seed", async () => {
    for (const backend of ['wasm', 'cpu'] as const) {
      await tf.setBackend(backend);
      tf.tidy(() => {
        const x = tf.randomNormal([6, 5, 5, 8], 0, 1, 'float32', 4);
        for (const seed of [dropoutSeed(17, CONTEXT), 123]) {
          const ours = tf.mul(x, dropoutMultiplier(x.shape, 0.25, seed));
          expect(ours.dataSync()).toEqual(tf.dropout(x, 0.25, undefined, seed).dataSync());
        }
      });
    }
  });

  it.each([[[64, 26, 26, 6]], [[5, 7]], [[3, 4, 5, 2]], [[9]]])(
    'when ReluBiasGrad runs on wasm for %j, then it equals the tf ops on cpu',
    async (shape) => {
      const run = async (backend: Backend) => {
        await tf.setBackend(backend);
        return tf.tidy(() => {
          const dy = tf.randomNormal(shape, 0, 1, 'float32', 1);
          const y = tf.relu(tf.randomNormal(shape, 0, 1, 'float32', 2));
          const { dz, db } = biasActivationGrad(dy, y, 'relu');
          return { dz: dz.dataSync().slice(), db: db.dataSync().slice(), dbShape: db.shape };
        });
      };
      const ours = await run('wasm');
      const reference = await run('cpu');
      expect(ours.dz).toEqual(reference.dz);
      expect(ours.dbShape).toEqual([shape.at(-1)]);
      expectClose(ours.db as Float32Array, reference.db as Float32Array, 1e-5);
    },
  );
});
