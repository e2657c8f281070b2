import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { patchGeometry, type PatchGeometry } from '../../../src/ml/backend/conv2d-patches.js';
import { initBackend } from '../../../src/ml/backend/index.js';
import { simdTrainingLoops } from '../../../src/ml/backend/simd-training-loops.js';
import type { TrainingLoops } from '../../../src/ml/backend/wasm-kernel-context.js';
import { cnnConvolutions, unevenPadding, type ConvCase } from '../../helpers/conv-cases.js';

// The SIMD loops on the wasm heap, bit for bit against references written from their definitions
// (im2col, col2im, the product) or against the cpu backend (max-pool gradient).

const convCases: ConvCase[] = [
  ...cnnConvolutions(16),
  { x: [3, 9, 7, 5], filter: [3, 3, 5, 2], strides: 2, pad: 'same' },
  { x: [1, 7, 7, 3], filter: [3, 3, 3, 1], strides: 2, pad: 'valid' },
  { x: [2, 10, 11, 7], filter: [5, 5, 7, 2], strides: 1, pad: 'same' },
  { x: [2, 8, 9, 4], filter: [2, 3, 4, 4], strides: [2, 1], pad: 'same' },
  { x: [2, 12, 12, 8], filter: [3, 3, 8, 2], strides: 3, pad: 'valid' },
  { x: [1, 3, 3, 9], filter: [5, 5, 9, 1], strides: 1, pad: 'same' },
  unevenPadding,
];

function convGeometry(c: ConvCase): PatchGeometry {
  return patchGeometry(tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad));
}

/** Random floats with some NaNs and negative zeros, which a copy must carry bit for bit. */
function awkwardValues(size: number, seed: number): Float32Array {
  const values = tf
    .tidy(() => tf.randomNormal([size], 0, 1, 'float32', seed).dataSync() as Float32Array)
    .slice();
  for (let i = 0; i < size; i += 17) values[i] = Number.NaN;
  for (let i = 5; i < size; i += 23) values[i] = -0;
  return values;
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** Bit-for-bit equality, reported as the first difference (vitest's deep diff of millions of values crawls). */
function expectSameBits(ours: Float32Array, reference: Float32Array | Uint32Array): void {
  const a = bits(ours);
  const b = reference instanceof Uint32Array ? reference : bits(reference);
  expect(a.length).toBe(b.length);
  let at = 0;
  while (at < a.length && a[at] === b[at]) at++;
  const ref = new Float32Array(b.buffer, b.byteOffset, b.length);
  expect(at < a.length ? { at, ours: ours[at], reference: ref[at] } : 'equal').toBe('equal');
}

function gatherReference(x: Float32Array, g: PatchGeometry, taps: number): Uint32Array {
  const from = bits(x);
  const positions = g.batch * g.outHeight * g.outWidth;
  const out = new Uint32Array(taps * positions);
  for (let fy = 0; fy < g.filterHeight; fy++) {
    for (let fx = 0; fx < g.filterWidth; fx++) {
      for (let ch = 0; ch < g.inChannels; ch++) {
        const row = ((fy * g.filterWidth + fx) * g.inChannels + ch) * positions;
        for (let n = 0; n < g.batch; n++) {
          for (let oy = 0; oy < g.outHeight; oy++) {
            for (let ox = 0; ox < g.outWidth; ox++) {
              const iy = oy * g.strideHeight + fy - g.padTop;
              const ix = ox * g.strideWidth + fx - g.padLeft;
              const inside = iy >= 0 && iy < g.inHeight && ix >= 0 && ix < g.inWidth;
              out[row + (n * g.outHeight + oy) * g.outWidth + ox] = inside
                ? from[((n * g.inHeight + iy) * g.inWidth + ix) * g.inChannels + ch]!
                : 0;
            }
          }
        }
      }
    }
  }
  return out;
}

/** col2im in the order the SIMD loop promises: (fy, fx, n, oy, ox), float32 sums. */
function scatterReference(cols: Float32Array, g: PatchGeometry): Float32Array {
  const dx = new Float32Array(g.batch * g.inHeight * g.inWidth * g.inChannels);
  const tapsPerPatch = g.filterHeight * g.filterWidth * g.inChannels;
  for (let fy = 0; fy < g.filterHeight; fy++) {
    for (let fx = 0; fx < g.filterWidth; fx++) {
      for (let n = 0; n < g.batch; n++) {
        for (let oy = 0; oy < g.outHeight; oy++) {
          for (let ox = 0; ox < g.outWidth; ox++) {
            const iy = oy * g.strideHeight + fy - g.padTop;
            const ix = ox * g.strideWidth + fx - g.padLeft;
            if (iy < 0 || iy >= g.inHeight || ix < 0 || ix >= g.inWidth) continue;
            const to = ((n * g.inHeight + iy) * g.inWidth + ix) * g.inChannels;
            const from =
              ((n * g.outHeight + oy) * g.outWidth + ox) * tapsPerPatch +
              (fy * g.filterWidth + fx) * g.inChannels;
            for (let ch = 0; ch < g.inChannels; ch++) dx[to + ch]! += cols[from + ch]!;
          }
        }
      }
    }
  }
  return dx;
}

describe('wasm SIMD training loops', () => {
  let backend: BackendWasm;
  let loops: TrainingLoops;
  beforeAll(async () => {
    await initBackend('wasm');
    await tf.setBackend('wasm');
    backend = tf.backend() as unknown as BackendWasm;
    loops = simdTrainingLoops();
  });

  /** Runs a loop into a fresh output that starts full of NaN, so every value it leaves is checked. */
  function intoGarbage(shape: number[], loop: (out: tf.TensorInfo) => void): Float32Array {
    const out = backend.makeOutput(shape, 'float32');
    try {
      bits(backend.typedArrayFromHeap(out) as Float32Array).fill(0x7fc00001);
      loop(out);
      return (backend.typedArrayFromHeap(out) as Float32Array).slice();
    } finally {
      backend.disposeData(out.dataId);
    }
  }

  /** Gathers the patches of case `c` from awkward values, and what they should be. */
  function gather(c: ConvCase, seed: number): { patches: Float32Array; reference: Uint32Array } {
    const g = convGeometry(c);
    const taps = c.filter[0] * c.filter[1] * c.filter[2];
    const values = awkwardValues(
      c.x.reduce((a, b) => a * b),
      seed,
    );
    const x = tf.tensor(values, c.x);
    const patches = intoGarbage([taps, g.batch * g.outHeight * g.outWidth], (out) =>
      loops.gatherPatchesByTap(backend, x, out, g),
    );
    x.dispose();
    return { patches, reference: gatherReference(values, g, taps) };
  }

  it.each(convCases)('when gathering patches of $x for $filter, then each is the input pixel or 0', (c) => {
    const { patches, reference } = gather(c, 1);
    expectSameBits(patches, reference);
  });

  it.each(convCases)('when scattering patch gradients onto $x for $filter, then dx is their sum', (c) => {
    const g = convGeometry(c);
    const positions = g.batch * g.outHeight * g.outWidth;
    const taps = c.filter[0] * c.filter[1] * c.filter[2];
    const values = tf.tidy(
      () => tf.randomNormal([positions * taps], 0, 1, 'float32', 2).dataSync() as Float32Array,
    );
    const cols = tf.tensor(values, [positions, taps]);
    const dx = intoGarbage([...c.x], (out) => loops.scatterPatches(backend, cols, out, g));
    cols.dispose();
    expectSameBits(dx, scatterReference(values, g));
  });

  interface PoolCase {
    x: [number, number, number, number];
    size: number | [number, number];
    strides: number | [number, number];
    pad: 'valid' | 'same';
  }
  /** MaxPoolGrad on a backend, for an input with many equal maxima (halves from a narrow range) and NaNs. */
  async function poolGradient(backend: 'wasm' | 'cpu', c: PoolCase): Promise<Float32Array> {
    await tf.setBackend(backend);
    const dx = tf.tidy(() => {
      const x = tf.randomNormal(c.x, 0, 1, 'float32', 3).mul(2).round().div(2).dataSync() as Float32Array;
      for (let i = 0; i < x.length; i += 7) x[i] = Number.NaN;
      const input = tf.tensor4d(x, c.x);
      const output = tf.maxPool(input, c.size, c.strides, c.pad);
      const dy = tf.randomNormal(output.shape, 0, 1, 'float32', 4);
      const attrs = { filterSize: c.size, strides: c.strides, pad: c.pad };
      return (
        tf.engine().runKernel('MaxPoolGrad', { dy, input, output }, attrs as never) as tf.Tensor
      ).dataSync();
    });
    await tf.setBackend('wasm');
    return dx as Float32Array;
  }

  const poolCases: PoolCase[] = [
    { x: [64, 26, 26, 6], size: 2, strides: 2, pad: 'valid' },
    { x: [64, 11, 11, 16], size: 2, strides: 2, pad: 'valid' },
    { x: [16, 26, 26, 32], size: 2, strides: 2, pad: 'valid' },
    { x: [16, 9, 9, 64], size: 2, strides: 2, pad: 'valid' },
    { x: [3, 11, 11, 5], size: 2, strides: 2, pad: 'valid' },
    { x: [2, 7, 9, 3], size: 2, strides: 2, pad: 'valid' },
    { x: [1, 5, 5, 1], size: 2, strides: 2, pad: 'same' },
    { x: [2, 9, 9, 7], size: 3, strides: 3, pad: 'same' },
  ];
  it.each(poolCases)(
    'when routing the max-pool gradient of $x (window $size, stride $strides, $pad) through ties and NaNs, then it equals cpu bit for bit',
    async (c) => {
      expectSameBits(await poolGradient('wasm', c), await poolGradient('cpu', c));
    },
  );

  const overlappingPoolCases: PoolCase[] = [
    { x: [2, 9, 7, 6], size: 3, strides: 2, pad: 'same' },
    { x: [2, 6, 6, 4], size: 3, strides: 1, pad: 'same' },
    { x: [2, 8, 8, 8], size: 2, strides: 1, pad: 'valid' },
    { x: [1, 5, 8, 2], size: [2, 3], strides: [1, 2], pad: 'valid' },
  ];
  it.each(overlappingPoolCases)(
    'when max-pool windows of $x overlap (window $size, stride $strides, $pad), then the gradient goes where cpu sends it',
    async (c) => {
      // A pixel that wins several windows gets the sum of their dy values, which cpu adds in
      // another order: the same pixels, equal to rounding.
      const ours = await poolGradient('wasm', c);
      const reference = await poolGradient('cpu', c);
      expect(ours.map((v) => Number(v !== 0))).toEqual(reference.map((v) => Number(v !== 0)));
      const scale = reference.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const worst = ours.reduce((m, v, i) => Math.max(m, Math.abs(v - reference[i]!)), 0);
      expect(worst).toBeLessThanOrEqual(1e-6 * scale);
    },
  );

  const products = [
    { m: 9, k: 1000, n: 6 },
    { m: 54, k: 777, n: 16 },
    { m: 1, k: 5, n: 4 },
    { m: 2, k: 3, n: 5 },
    { m: 3, k: 1, n: 7 },
    { m: 5, k: 64, n: 33 },
  ];
  it.each(products)(
    'when multiplying [$m, $k] by [$k, $n] unpacked, then each value is the float32 sum over k in order',
    ({ m, k, n }) => {
      const av = tf.tidy(() => tf.randomNormal([m * k], 0, 1, 'float32', 6).dataSync() as Float32Array);
      const bv = tf.tidy(() => tf.randomNormal([k * n], 0, 1, 'float32', 7).dataSync() as Float32Array);
      const a = tf.tensor(av, [1, m, k]);
      const b = tf.tensor(bv, [1, k, n]);
      const c = intoGarbage([1, m, n], (out) => loops.matMulUnpacked!(backend, a, b, out));
      tf.dispose([a, b]);
      const reference = new Float32Array(m * n);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let sum = 0;
          for (let t = 0; t < k; t++) sum = Math.fround(sum + Math.fround(av[i * k + t]! * bv[t * n + j]!));
          reference[i * n + j] = sum;
        }
      }
      expectSameBits(c, reference);
    },
  );

  const heapBytes = () => (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer.byteLength;

  it('when the wasm heap grows after the loops first ran, then they still work on it', async () => {
    await tf.setBackend('wasm');
    const c = convCases[5]!;
    gather(c, 5);
    const before = heapBytes();
    const big = tf.zeros([before / 4 + 1_000_000]);
    const after = gather(c, 5);
    expect(heapBytes()).toBeGreaterThan(before);
    big.dispose();
    expectSameBits(after.patches, after.reference);
  });
});
