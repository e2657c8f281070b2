import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/ml/backend/index.js';
import { cnnConvolutions, unevenPadding, type ConvCase } from '../../helpers/conv-cases.js';

// Each kernel runs on 'wasm' (ours) and on 'cpu' (tfjs's reference) with the same random data.
type Attrs = Record<string, unknown>;
type Inputs = Record<string, { shape: number[]; values: Float32Array }>;

function random(shape: number[], seed: number): { shape: number[]; values: Float32Array } {
  return { shape, values: tf.randomNormal(shape, 0, 1, 'float32', seed).dataSync() as Float32Array };
}

async function runOn(backend: 'wasm' | 'cpu', kernel: string, inputs: Inputs, attrs: Attrs) {
  await tf.setBackend(backend);
  const tensors = Object.fromEntries(
    Object.entries(inputs).map(([name, v]) => [name, tf.tensor(v.values, v.shape)]),
  );
  const out = tf.engine().runKernel(kernel, tensors, attrs as never) as tf.Tensor;
  const result = { shape: out.shape, values: out.dataSync().slice() as Float32Array };
  tf.dispose([out, ...Object.values(tensors)]);
  return result;
}

function relativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / (scale || 1);
}

async function expectSameAsCpu(kernel: string, inputs: Inputs, attrs: Attrs, tolerance = 1e-4) {
  const ours = await runOn('wasm', kernel, inputs, attrs);
  const reference = await runOn('cpu', kernel, inputs, attrs);
  expect(ours.shape).toEqual(reference.shape);
  expect(ours.values.length).toBe(reference.values.length);
  expect(relativeError(ours.values, reference.values)).toBeLessThanOrEqual(tolerance);
}

const convCases: ConvCase[] = [
  // The wide CNN's at a small batch, for the cpu reference's sake.
  ...cnnConvolutions(4),
  { x: [3, 9, 7, 5], filter: [3, 3, 5, 2], strides: 2, pad: 'same' },
  { x: [1, 3, 3, 9], filter: [5, 5, 9, 1], strides: 1, pad: 'same' },
  { x: [3, 9, 7, 4], filter: [3, 3, 4, 5], strides: 1, pad: 'same' },
  { x: [3, 9, 7, 4], filter: [3, 3, 4, 5], strides: 2, pad: 'same' },
  { x: [2, 10, 11, 3], filter: [3, 3, 3, 2], strides: 2, pad: 'valid' },
  { x: [2, 8, 8, 2], filter: [5, 5, 2, 3], strides: 1, pad: 'same' },
  { x: [2, 8, 9, 3], filter: [2, 3, 3, 4], strides: [2, 1], pad: 'same' },
  { x: [4, 6, 6, 8], filter: [1, 1, 8, 4], strides: 1, pad: 'valid' },
  { x: [1, 7, 7, 1], filter: [3, 3, 1, 1], strides: 2, pad: 'valid' },
  unevenPadding,
];

function convOutShape(c: ConvCase): number[] {
  return tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad).outShape;
}

describe('wasm training kernels', () => {
  let wasm: { numDataIds(): number };
  beforeAll(async () => {
    await initBackend('wasm');
    wasm = tf.findBackend('wasm') as unknown as { numDataIds(): number };
  });

  it.each(convCases)('Conv2DBackpropFilter equals the cpu gradient for $x / $filter', async (c) => {
    const inputs = { x: random(c.x, 1), dy: random(convOutShape(c), 2) };
    await expectSameAsCpu('Conv2DBackpropFilter', inputs, {
      strides: c.strides,
      pad: c.pad,
      dataFormat: 'NHWC',
      filterShape: c.filter,
    });
  });

  it.each(convCases)('Conv2DBackpropInput equals the cpu gradient for $x / $filter', async (c) => {
    const inputs = { dy: random(convOutShape(c), 3), filter: random(c.filter, 4) };
    await expectSameAsCpu('Conv2DBackpropInput', inputs, {
      strides: c.strides,
      pad: c.pad,
      dataFormat: 'NHWC',
      inputShape: c.x,
    });
  });

  const poolCases = [
    { x: [64, 26, 26, 6], size: 2, strides: 2, pad: 'valid' },
    { x: [3, 11, 11, 16], size: 2, strides: 2, pad: 'valid' },
    { x: [8, 26, 26, 32], size: 2, strides: 2, pad: 'valid' },
    { x: [8, 9, 9, 64], size: 2, strides: 2, pad: 'valid' },
    { x: [3, 11, 11, 5], size: 2, strides: 2, pad: 'valid' },
    { x: [1, 7, 9, 3], size: 2, strides: 2, pad: 'same' },
    { x: [2, 9, 7, 3], size: 3, strides: 2, pad: 'same' },
    { x: [2, 6, 6, 4], size: 3, strides: 1, pad: 'same' },
    { x: [1, 5, 8, 2], size: [2, 3], strides: [1, 2], pad: 'valid' },
  ];
  it.each(poolCases)('MaxPoolGrad equals the cpu gradient for $x, window $size', async (c) => {
    const x = random(c.x, 5);
    await tf.setBackend('cpu');
    const y = tf.tidy(() =>
      tf.maxPool(tf.tensor4d(x.values, c.x as never), c.size as never, c.strides as never, c.pad as never),
    );
    const output = { shape: y.shape, values: y.dataSync().slice() as Float32Array };
    y.dispose();
    const inputs = { dy: random(output.shape, 6), input: x, output };
    await expectSameAsCpu(
      'MaxPoolGrad',
      inputs,
      { filterSize: c.size, strides: c.strides, pad: c.pad },
      1e-6,
    );
  });

  it('when a pooling window holds equal values, then MaxPoolGrad routes dy to the first one, as cpu does', async () => {
    const x = { shape: [1, 4, 4, 2], values: new Float32Array(32).fill(1) };
    const output = { shape: [1, 2, 2, 2], values: new Float32Array(8).fill(1) };
    const inputs = { dy: random(output.shape, 7), input: x, output };
    await expectSameAsCpu('MaxPoolGrad', inputs, { filterSize: 2, strides: 2, pad: 'valid' }, 0);
  });

  it('when a pooling window holds NaN, then MaxPoolGrad skips it as cpu does', async () => {
    const values = random([1, 4, 4, 1], 10).values;
    for (const i of [0, 1, 4, 5, 10]) values[i] = Number.NaN; // all of the first window, one of the fourth
    const inputs = {
      dy: random([1, 2, 2, 1], 11),
      input: { shape: [1, 4, 4, 1], values },
      output: random([1, 2, 2, 1], 12),
    };
    await expectSameAsCpu('MaxPoolGrad', inputs, { filterSize: 2, strides: 2, pad: 'valid' }, 0);
  });

  const matMulCases = [
    { a: [64, 120], b: [400, 120], transposeA: false, transposeB: true },
    { a: [64, 400], b: [64, 120], transposeA: true, transposeB: false },
    { a: [5, 3], b: [4, 5], transposeA: true, transposeB: true },
    { a: [2, 3, 4], b: [2, 5, 4], transposeA: false, transposeB: true },
    { a: [2, 4, 3], b: [1, 4, 5], transposeA: true, transposeB: false },
    { a: [7, 6], b: [6, 2], transposeA: false, transposeB: false },
    { a: [64, 400], b: [400, 120], transposeA: false, transposeB: false },
    { a: [1, 9, 50], b: [1, 50, 6], transposeA: false, transposeB: false },
    { a: [1, 5, 9], b: [6, 5], transposeA: true, transposeB: true },
  ];
  it.each(matMulCases)(
    'BatchMatMul equals cpu for $a x $b (transposeA $transposeA, transposeB $transposeB)',
    async (c) => {
      await expectSameAsCpu(
        'BatchMatMul',
        { a: random(c.a, 8), b: random(c.b, 9) },
        { transposeA: c.transposeA, transposeB: c.transposeB },
      );
    },
  );

  it('when a whole CNN training step runs, then the gradients equal those on cpu', async () => {
    const grads = async (backend: 'wasm' | 'cpu') => {
      await tf.setBackend(backend);
      return tf.tidy(() => {
        const x = tf.randomUniform([8, 12, 12, 1], 0, 1, 'float32', 11) as tf.Tensor4D;
        const w1 = tf.randomNormal([3, 3, 1, 4], 0, 0.5, 'float32', 12);
        const w2 = tf.randomNormal([3, 3, 4, 6], 0, 0.5, 'float32', 13);
        const w3 = tf.randomNormal([6 * 2 * 2, 3], 0, 0.5, 'float32', 14);
        const loss = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => {
          const h1 = tf.maxPool(tf.relu(tf.conv2d(x, a as tf.Tensor4D, 1, 'same')), 2, 2, 'valid');
          const h2 = tf.maxPool(tf.relu(tf.conv2d(h1, b as tf.Tensor4D, 2, 'same')), 2, 2, 'same');
          return tf
            .matMul(h2.reshape([8, -1]), c)
            .square()
            .mean();
        };
        return tf
          .grads(loss)([w1, w2, w3])
          .map((g) => g.dataSync().slice() as Float32Array);
      });
    };
    const ours = await grads('wasm');
    const reference = await grads('cpu');
    ours.forEach((g, i) => expect(relativeError(g, reference[i]!)).toBeLessThan(1e-4));
  });

  it('when the kernels run, then they leave no tensor and no wasm buffer behind', async () => {
    await tf.setBackend('wasm');
    const c = convCases[3]!;
    const before = { tensors: tf.memory().numTensors, buffers: wasm.numDataIds() };
    for (let i = 0; i < 3; i++) {
      tf.tidy(() => {
        const x = tf.randomNormal(c.x);
        const dy = tf.randomNormal(convOutShape(c));
        const filter = tf.randomNormal(c.filter);
        const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC' };
        tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
          ...attrs,
          filterShape: c.filter,
        } as never);
        tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, { ...attrs, inputShape: c.x } as never);
        const y = tf.maxPool(x as tf.Tensor4D, 2, 2, 'same');
        tf.engine().runKernel('MaxPoolGrad', { dy: y, input: x, output: y }, {
          filterSize: 2,
          strides: 2,
          pad: 'same',
        } as never);
        tf.matMul(tf.ones([3, 4]), tf.ones([5, 4]), false, true);
      });
    }
    expect(tf.memory().numTensors).toBe(before.tensors);
    expect(wasm.numDataIds()).toBe(before.buffers);
  });
});
