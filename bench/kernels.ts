/**
 * Our wasm training kernels against what the wasm backend ships, on the seed CNN's shapes at
 * batch 64, measured in the same process (ratios survive a noisy machine); then where the time
 * of one whole seed-CNN training step goes. Prints one JSON object.
 *
 *   npm run bench:kernels
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { buildModel } from '../src/ml/architectures.js';
import { initBackend } from '../src/ml/backend/index.js';
import { printReport } from './report.js';

// The shipped kernels, taken before ours replace them.
const shipped = Object.fromEntries(
  ['MaxPoolGrad', 'Conv2DBackpropInput', 'BatchMatMul', 'Conv3DBackpropFilterV2'].map((name) => [
    name,
    tf.getKernel(name, 'wasm')!,
  ]),
);
await initBackend('wasm');
const backend = tf.backend() as unknown as BackendWasm;
for (const config of Object.values(shipped)) config.setupFunc?.(backend);

function timeMicros(f: () => void, runs = 50): number {
  for (let i = 0; i < 5; i++) f();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    f();
    samples.push((performance.now() - t) * 1000);
  }
  return samples.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}

function runShipped(name: string, inputs: Record<string, tf.Tensor>, attrs: object): () => void {
  return () => {
    const out = shipped[name]!.kernelFunc({ inputs, backend, attrs } as never) as tf.TensorInfo;
    backend.disposeData(out.dataId);
  };
}
function runOurs(name: string, inputs: Record<string, tf.Tensor>, attrs: object): () => void {
  return () => (tf.engine().runKernel(name, inputs, attrs as never) as tf.Tensor).dispose();
}

const rows: { kernel: string; shape: string; oursMicros: number; shippedMicros: number; speedup: number }[] =
  [];
function compare(kernel: string, shape: string, ours: () => void, theirs: () => void) {
  const oursMicros = timeMicros(ours);
  const shippedMicros = timeMicros(theirs);
  rows.push({ kernel, shape, oursMicros, shippedMicros, speedup: shippedMicros / oursMicros });
}

const convs = [
  { x: [64, 28, 28, 1], filter: [3, 3, 1, 6] },
  { x: [64, 13, 13, 6], filter: [3, 3, 6, 16] },
] as const;
for (const c of convs) {
  const x = tf.randomNormal([...c.x]);
  const filter = tf.randomNormal([...c.filter]);
  const dy = tf.randomNormal(
    tf.backend_util.computeConv2DInfo([...c.x], [...c.filter], 1, 1, 'valid').outShape,
  );
  const attrs = { strides: 1, pad: 'valid', dataFormat: 'NHWC' };
  // The shipped wasm backend has no 2-D filter gradient; its 3-D one with a depth of 1 is the stand-in.
  const x5 = x.reshape([c.x[0], 1, ...c.x.slice(1)]);
  const dy5 = dy.reshape([dy.shape[0], 1, ...dy.shape.slice(1)]);
  compare(
    'Conv2DBackpropFilter',
    `x ${c.x}`,
    runOurs('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: c.filter }),
    runShipped(
      'Conv3DBackpropFilterV2',
      { x: x5, dy: dy5 },
      { strides: [1, 1, 1], pad: 'valid', filterShape: [1, ...c.filter] },
    ),
  );
  compare(
    'Conv2DBackpropInput',
    `x ${c.x}`,
    runOurs('Conv2DBackpropInput', { dy, filter }, { ...attrs, inputShape: c.x }),
    runShipped('Conv2DBackpropInput', { dy, filter }, { ...attrs, inputShape: c.x }),
  );
  const pooled = tf.maxPool(dy as tf.Tensor4D, 2, 2, 'valid');
  const poolAttrs = { filterSize: 2, strides: 2, pad: 'valid' };
  compare(
    'MaxPoolGrad',
    `x ${dy.shape}`,
    runOurs('MaxPoolGrad', { dy: pooled, input: dy, output: pooled }, poolAttrs),
    runShipped('MaxPoolGrad', { dy: pooled, input: dy, output: pooled }, poolAttrs),
  );
}
for (const [m, k, n] of [
  [64, 400, 120],
  [64, 120, 84],
]) {
  const dy = tf.randomNormal([m!, n!]);
  const w = tf.randomNormal([k!, n!]);
  const attrs = { transposeA: false, transposeB: true };
  compare(
    'BatchMatMul (dy x W^T)',
    `${m}x${n} by (${k}x${n})^T`,
    runOurs('BatchMatMul', { a: dy, b: w }, attrs),
    runShipped('BatchMatMul', { a: dy, b: w }, attrs),
  );
}

// One seed-CNN training step at batch 64, and the kernels it spends its time in.
const model = buildModel('seed', 1);
const optimizer = tf.train.adam(0.001);
const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
const xs = tf.randomUniform([64, 28, 28, 1]);
const ys = tf.oneHot(tf.randomUniform([64], 0, 10, 'int32'), 10);
const step = () =>
  optimizer.minimize(
    () => tf.losses.softmaxCrossEntropy(ys, model.apply(xs, { training: true }) as tf.Tensor) as tf.Scalar,
    true,
    variables,
  )!;
const stepMicros = timeMicros(() => step().dispose(), 100);
const byKernel = new Map<string, number>();
const profiles = 10;
for (let i = 0; i < profiles; i++) {
  const profile = await tf.profile(() => step());
  for (const k of profile.kernels) {
    const ms = await (k.kernelTimeMs as number | Promise<number>);
    byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (ms * 1000) / profiles);
  }
}
const stepKernels = [...byKernel.entries()]
  .sort((a, b) => b[1] - a[1])
  .slice(0, 12)
  .map(([kernel, micros]) => ({ kernel, micros: Math.round(micros), share: micros / stepMicros }));

printReport('kernels', {
  kernels: rows.map((r) => ({
    ...r,
    oursMicros: Math.round(r.oursMicros),
    shippedMicros: Math.round(r.shippedMicros),
    speedup: Number(r.speedup.toFixed(2)),
  })),
  seedStep: {
    batch: 64,
    micros: Math.round(stepMicros),
    imagesPerSecond: Math.round(64e6 / stepMicros),
    kernels: stepKernels,
  },
});
