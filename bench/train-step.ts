/**
 * One seed-CNN training step, tfjs autodiff + tf Adam against the training plan + fused Adam,
 * in the same process and interleaved, so machine noise hits both alike.
 * Usage: tsx bench/train-step.ts [--steps 60] [--repeats 5] [--batches 64,32] [--arch seed]
 */
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { buildModel } from '../src/ml/architectures.js';
import { initBackend } from '../src/ml/backend/index.js';
import { IMAGE_SIDE } from '../src/ml/image-shape.js';
import { autodiffStepper, createTrainStepper, type TrainStepper } from '../src/ml/train-step.js';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '60' },
    repeats: { type: 'string', default: '5' },
    batches: { type: 'string', default: '64,32' },
    arch: { type: 'string', default: 'seed' },
  },
});
const steps = Number(values.steps);
const repeats = Number(values.repeats);
const architecture = values.arch as 'seed' | 'wide';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const backend = await initBackend('wasm');
console.log(
  `backend ${backend.name}, simd ${backend.simd}, ${architecture} CNN, ${steps} steps x ${repeats} repeats`,
);

type Kind = 'autodiff' | 'plan';
const make: Record<Kind, (m: tf.LayersModel, o: tf.Optimizer) => TrainStepper> = {
  autodiff: autodiffStepper,
  plan: createTrainStepper,
};

for (const n of values.batches.split(',').map(Number)) {
  const batch = {
    images: tf.randomUniform([n, IMAGE_SIDE, IMAGE_SIDE, 1], 0, 1, 'float32', 1) as tf.Tensor4D,
    labels: tf.oneHot(tf.randomUniform([n], 0, 10, 'int32', 2) as tf.Tensor1D, 10).toFloat() as tf.Tensor2D,
  };
  const results: Record<Kind, { step: number[]; gradients: number[]; apply: number[] }> = {
    autodiff: { step: [], gradients: [], apply: [] },
    plan: { step: [], gradients: [], apply: [] },
  };
  for (let r = 0; r < repeats; r++) {
    for (const kind of ['autodiff', 'plan'] as Kind[]) {
      const model = buildModel(architecture, 1);
      const optimizer = tf.train.adam(0.001);
      const stepper = make[kind](model, optimizer);
      const gradient = new Float32Array(stepper.gradientSize);
      const step = (i: number) => {
        const t0 = performance.now();
        stepper.gradients(batch, gradient, { step: i, replica: 0 });
        for (let k = 0; k < gradient.length; k++) gradient[k] = gradient[k]! / n;
        const t1 = performance.now();
        stepper.apply(gradient, i);
        const t2 = performance.now();
        return [t2 - t0, t1 - t0, t2 - t1] as const;
      };
      for (let i = 0; i < 10; i++) step(i);
      const times = Array.from({ length: steps }, (_, i) => step(10 + i));
      results[kind].step.push(median(times.map((t) => t[0])));
      results[kind].gradients.push(median(times.map((t) => t[1])));
      results[kind].apply.push(median(times.map((t) => t[2])));
      stepper.dispose();
      model.dispose();
      optimizer.dispose();
    }
  }
  const show = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' ');
  console.log(`\nbatch ${n}: per-repeat medians, ms`);
  for (const kind of ['autodiff', 'plan'] as Kind[]) {
    const { step, gradients, apply } = results[kind];
    console.log(
      `  ${kind.padEnd(8)} step ${show(step)} | gradients ${show(gradients)} | apply ${show(apply)}`,
    );
  }
  const ratios = results.autodiff.step.map((a, i) => a / results.plan.step[i]!);
  console.log(
    `  speed-up per repeat ${ratios.map((x) => x.toFixed(2)).join(' ')}; of medians ${(median(results.autodiff.step) / median(results.plan.step)).toFixed(2)}x` +
      ` (gradients ${(median(results.autodiff.gradients) / median(results.plan.gradients)).toFixed(2)}x, apply ${(median(results.autodiff.apply) / median(results.plan.apply)).toFixed(2)}x)`,
  );
  tf.dispose([batch.images, batch.labels]);
}
