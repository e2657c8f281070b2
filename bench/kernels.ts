/**
 * Our wasm training kernels, whose loops and products run in WebAssembly SIMD
 * (assembly/training-kernels.ts), against the same kernels as they were before (JavaScript loops,
 * bench/js-training-loops.ts, and the shipped BatchMatMul for every product) and against what the
 * wasm backend ships, on the seed and wide CNNs' shapes at batch 64, all in the same process
 * (ratios survive a noisy machine). Then whole training steps with either set, alternated, and
 * where the time of one seed-CNN step goes. Prints one JSON object.
 *
 *   npm run bench:kernels
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { buildModel } from '../src/ml/architectures.js';
import { initBackend } from '../src/ml/backend/index.js';
import { wasmBatchMatMulConfig } from '../src/ml/backend/wasm-batch-mat-mul.js';
import { simdTrainingLoops } from '../src/ml/backend/simd-training-loops.js';
import { wasmConv2DBackpropFilterConfig } from '../src/ml/backend/wasm-conv2d-backprop-filter.js';
import { wasmConv2DBackpropInputConfig } from '../src/ml/backend/wasm-conv2d-backprop-input.js';
import type { WasmKernels } from '../src/ml/backend/wasm-kernel-context.js';
import { wasmMaxPoolGradConfig } from '../src/ml/backend/wasm-max-pool-grad.js';
import { IMAGE_SIDE } from '../src/ml/image-shape.js';
import { createOptimizer } from '../src/ml/optimizers.js';
import { createTrainStepper } from '../src/ml/train-step.js';
import { jsTrainingLoops } from './js-training-loops.js';
import { printReport } from './report.js';

// The shipped kernels, taken before ours replace them.
const shipped = Object.fromEntries(
  ['MaxPoolGrad', 'Conv2DBackpropInput', 'BatchMatMul', 'Conv3DBackpropFilterV2', 'Transpose', 'Conv2D'].map(
    (name) => [name, tf.getKernel(name, 'wasm')!],
  ),
);
await initBackend('wasm');
const backend = tf.backend() as unknown as BackendWasm;
for (const config of Object.values(shipped)) config.setupFunc?.(backend);

const base = {
  matMul: shipped.BatchMatMul!.kernelFunc,
  transpose: shipped.Transpose!.kernelFunc,
  conv2d: shipped.Conv2D!.kernelFunc,
};
const kernelsWith = (loops: WasmKernels['loops']) => {
  const k: WasmKernels = { ...base, loops };
  return [
    wasmConv2DBackpropFilterConfig(k),
    wasmConv2DBackpropInputConfig(k),
    wasmMaxPoolGradConfig(k),
    wasmBatchMatMulConfig(shipped.BatchMatMul!, k),
  ];
};
const simd = kernelsWith(simdTrainingLoops());
const js = kernelsWith(jsTrainingLoops);
const byName = (configs: tf.KernelConfig[], name: string) => configs.find((c) => c.kernelName === name)!;

function timeMicros(f: () => void, runs = 50): number {
  for (let i = 0; i < Math.min(5, runs); i++) f();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    f();
    samples.push((performance.now() - t) * 1000);
  }
  return samples.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}

/**
 * Times a kernel on fresh copies of its inputs each run, as in training, where every tensor is
 * new: the shipped BatchMatMul packs its second operand once per tensor and caches it, so
 * reusing inputs would hide 0.3-1.2 ms a call that a training step pays.
 */
function run(config: tf.KernelConfig, inputs: Record<string, tf.Tensor>, attrs: object, runs = 50): number {
  const samples: number[] = [];
  for (let i = 0; i < runs + 3; i++) {
    const fresh = Object.fromEntries(Object.entries(inputs).map(([name, t]) => [name, tf.add(t, 0)]));
    const t = performance.now();
    const out = config.kernelFunc({ inputs: fresh, backend, attrs } as never) as tf.TensorInfo;
    if (i >= 3) samples.push((performance.now() - t) * 1000);
    backend.disposeData(out.dataId);
    tf.dispose(Object.values(fresh));
  }
  return samples.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}

interface Row {
  kernel: string;
  shape: string;
  simdMicros: number;
  jsMicros: number;
  shippedMicros?: number;
}
const rows: Row[] = [];
function compare(
  kernel: string,
  shape: string,
  inputs: Record<string, tf.Tensor>,
  attrs: object,
  theirs?: () => number,
) {
  const simdMicros = run(byName(simd, kernel), inputs, attrs);
  const jsMicros = run(byName(js, kernel), inputs, attrs);
  rows.push({
    kernel,
    shape,
    simdMicros,
    jsMicros,
    ...(theirs ? { shippedMicros: theirs() } : {}),
  });
}

const convs = [
  { net: 'seed', x: [64, IMAGE_SIDE, IMAGE_SIDE, 1], filter: [3, 3, 1, 6] },
  { net: 'seed', x: [64, 13, 13, 6], filter: [3, 3, 6, 16] },
  { net: 'wide', x: [64, IMAGE_SIDE, IMAGE_SIDE, 1], filter: [3, 3, 1, 32] },
  { net: 'wide', x: [64, 13, 13, 32], filter: [3, 3, 32, 64] },
  { net: 'wide', x: [64, 11, 11, 64], filter: [3, 3, 64, 64] },
] as const;
for (const c of convs) {
  const x = tf.randomNormal([...c.x]);
  const dy = tf.randomNormal(
    tf.backend_util.computeConv2DInfo([...c.x], [...c.filter], 1, 1, 'valid').outShape,
  );
  const attrs = { strides: 1, pad: 'valid', dataFormat: 'NHWC', filterShape: c.filter };
  // The shipped wasm backend has no 2-D filter gradient; its 3-D one with a depth of 1 is the
  // stand-in, timed on the seed's shapes only (the wide ones take it a quarter of a second).
  const x5 = x.reshape([c.x[0], 1, ...c.x.slice(1)]);
  const dy5 = dy.reshape([dy.shape[0], 1, ...dy.shape.slice(1)]);
  const standIn = () =>
    run(
      shipped.Conv3DBackpropFilterV2!,
      { x: x5, dy: dy5 },
      { strides: [1, 1, 1], pad: 'valid', filterShape: [1, ...c.filter] },
      20,
    );
  compare(
    'Conv2DBackpropFilter',
    `${c.net}: x ${c.x}`,
    { x, dy },
    attrs,
    c.net === 'seed' ? standIn : undefined,
  );
}

// Stride 1 takes the shipped Conv2D, which has no loop of ours; stride 2 takes dy x W^T and col2im.
for (const c of [convs[1], convs[3]]) {
  const dy = tf.randomNormal(
    tf.backend_util.computeConv2DInfo([...c.x], [...c.filter], 2, 1, 'same').outShape,
  );
  const filter = tf.randomNormal([...c.filter]);
  const attrs = { strides: 2, pad: 'same', dataFormat: 'NHWC', inputShape: c.x };
  compare('Conv2DBackpropInput', `x ${c.x}, stride 2, same`, { dy, filter }, attrs, () =>
    run(shipped.Conv2DBackpropInput!, { dy, filter }, attrs, 20),
  );
}

const pools = [
  { net: 'seed', x: [64, 26, 26, 6], size: 2, strides: 2, pad: 'valid' },
  { net: 'seed', x: [64, 11, 11, 16], size: 2, strides: 2, pad: 'valid' },
  { net: 'wide', x: [64, 26, 26, 32], size: 2, strides: 2, pad: 'valid' },
  { net: 'wide', x: [64, 9, 9, 64], size: 2, strides: 2, pad: 'valid' },
  { net: 'general path', x: [64, 26, 26, 6], size: 3, strides: 2, pad: 'same' },
] as const;
for (const p of pools) {
  const input = tf.randomNormal([...p.x]) as tf.Tensor4D;
  const output = tf.maxPool(input, p.size, p.strides, p.pad);
  const dy = tf.randomNormal(output.shape);
  const inputs = { dy, input, output };
  const attrs = { filterSize: p.size, strides: p.strides, pad: p.pad };
  compare('MaxPoolGrad', `${p.net}: x ${p.x}, ${p.size}x${p.size} stride ${p.strides}`, inputs, attrs, () =>
    run(shipped.MaxPoolGrad!, inputs, attrs, 20),
  );
}

// The seed's dense layers' products in training: forward (the fused kernel takes those in the
// models), then dx = dy x W^T and dW = x^T x dy.
for (const [m, k, n] of [
  [64, 400, 120],
  [64, 120, 84],
]) {
  const x = tf.randomNormal([m!, k!]);
  const w = tf.randomNormal([k!, n!]);
  const dy = tf.randomNormal([m!, n!]);
  const cases = [
    {
      what: `x W, ${m}x${k} by ${k}x${n}`,
      inputs: { a: x, b: w },
      attrs: { transposeA: false, transposeB: false },
    },
    {
      what: `dy W^T, ${m}x${n} by (${k}x${n})^T`,
      inputs: { a: dy, b: w },
      attrs: { transposeA: false, transposeB: true },
    },
    {
      what: `x^T dy, (${m}x${k})^T by ${m}x${n}`,
      inputs: { a: x, b: dy },
      attrs: { transposeA: true, transposeB: false },
    },
  ];
  for (const c of cases) {
    compare('BatchMatMul', c.what, c.inputs, c.attrs, () => run(shipped.BatchMatMul!, c.inputs, c.attrs, 20));
  }
}

/** Registers our kernels with the given loops for the engine (the models' steps). */
function register(configs: tf.KernelConfig[]): void {
  for (const config of configs) {
    tf.unregisterKernel(config.kernelName, config.backendName);
    tf.registerKernel(config);
  }
}

/** One training step as training runs it (the stepper of src/ml/train-step.ts), at batch 64. */
function trainingStep(architecture: 'seed' | 'wide'): () => void {
  const model = buildModel(architecture, 1);
  const stepper = createTrainStepper(model, createOptimizer('adam', 0.001));
  const images = tf.randomUniform([64, IMAGE_SIDE, IMAGE_SIDE, 1]) as tf.Tensor4D;
  const labels = tf.oneHot(tf.randomUniform([64], 0, 10, 'int32'), 10).toFloat() as tf.Tensor2D;
  const gradient = new Float32Array(stepper.gradientSize);
  let step = 0;
  return () => {
    stepper.gradients({ images, labels }, gradient, { step, replica: 0 });
    for (let i = 0; i < gradient.length; i++) gradient[i] = gradient[i]! / 64;
    stepper.apply(gradient, step);
    step++;
  };
}

// Whole steps at batch 64, JS loops and SIMD loops alternated so both see the same machine load.
const steps: Record<string, { simdMicros: number[]; jsMicros: number[] }> = {};
for (const [architecture, runs, repeats] of [
  ['seed', 40, 5],
  ['wide', 8, 3],
] as const) {
  const step = trainingStep(architecture);
  const times = (steps[architecture] = { simdMicros: [] as number[], jsMicros: [] as number[] });
  for (let r = 0; r < repeats; r++) {
    register(js);
    times.jsMicros.push(Math.round(timeMicros(step, runs)));
    register(simd);
    times.simdMicros.push(Math.round(timeMicros(step, runs)));
  }
}

// Where the time of one seed-CNN step goes, with the SIMD loops.
register(simd);
const seedStep = trainingStep('seed');
const seedMicros = timeMicros(seedStep, 100);
const byKernel = new Map<string, number>();
const profiles = 10;
for (let i = 0; i < profiles; i++) {
  const profile = await tf.profile(() => {
    seedStep();
    return [];
  });
  for (const k of profile.kernels) {
    // An op's record (`fusedConv2d__op`) wraps its kernel's, which is counted on its own.
    if (k.name.endsWith('__op')) continue;
    const ms = await (k.kernelTimeMs as number | Promise<number>);
    byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (ms * 1000) / profiles);
  }
}
const stepKernels = [...byKernel.entries()]
  .sort((a, b) => b[1] - a[1])
  .slice(0, 12)
  .map(([kernel, micros]) => ({
    kernel,
    micros: Math.round(micros),
    share: Number((micros / seedMicros).toFixed(3)),
  }));

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
printReport('kernels', {
  kernels: rows.map((r) => ({
    kernel: r.kernel,
    shape: r.shape,
    simdMicros: Math.round(r.simdMicros),
    jsMicros: Math.round(r.jsMicros),
    speedupOverJs: Number((r.jsMicros / r.simdMicros).toFixed(2)),
    ...(r.shippedMicros === undefined
      ? {}
      : {
          shippedMicros: Math.round(r.shippedMicros),
          speedupOverShipped: Number((r.shippedMicros / r.simdMicros).toFixed(2)),
        }),
  })),
  steps: Object.fromEntries(
    Object.entries(steps).map(([architecture, t]) => [
      architecture,
      { ...t, speedup: Number((median(t.jsMicros) / median(t.simdMicros)).toFixed(2)) },
    ]),
  ),
  seedStep: {
    batch: 64,
    micros: Math.round(seedMicros),
    imagesPerSecond: Math.round(64e6 / seedMicros),
    kernels: stepKernels,
  },
});
