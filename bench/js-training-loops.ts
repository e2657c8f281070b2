/**
 * The JavaScript loops that our wasm training kernels ran before they moved to WebAssembly SIMD
 * (assembly/training-kernels.ts), kept for bench/kernels.ts to measure against in the same run.
 * They have no unpacked product, so kernels given them use the shipped BatchMatMul, as before.
 * Not used by the service.
 */
import type { TensorInfo } from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { PatchGeometry } from '../src/ml/backend/conv2d-patches.js';
import type { TrainingLoops } from '../src/ml/backend/wasm-kernel-context.js';

const f32 = (backend: BackendWasm, t: TensorInfo) => backend.typedArrayFromHeap(t) as Float32Array;

export const jsTrainingLoops: TrainingLoops = {
  gatherPatchesByTap: (backend, x, patches, g) =>
    gatherPatchesByTap(f32(backend, x), f32(backend, patches), g),
  scatterPatches(backend, cols, dx, g) {
    const dxValues = f32(backend, dx);
    dxValues.fill(0);
    scatterPatches(f32(backend, cols), dxValues, g);
  },
  maxPoolGrad: (backend, x, dy, dx, g) => maxPoolGrad(f32(backend, x), f32(backend, dy), f32(backend, dx), g),
};

/**
 * The output columns whose input pixel for filter column `fx` lies inside the image:
 * [first, end). Outside it the tap sees padding.
 */
function validColumns(g: PatchGeometry, fx: number): [number, number] {
  const offset = fx - g.padLeft;
  const first = offset >= 0 ? 0 : Math.ceil(-offset / g.strideWidth);
  const end = Math.min(g.outWidth, Math.floor((g.inWidth - 1 - offset) / g.strideWidth) + 1);
  return [Math.min(first, g.outWidth), Math.max(end, 0)];
}

/**
 * im2col with one row per filter tap: dst[(fy*FW + fx)*C + c][(n*OH + oy)*OW + ox] is the input
 * pixel that tap sees at that output position (0 in the padding). Row-per-tap makes the filter
 * gradient one plain matrix product, dst x dy, the fast path of the wasm BatchMatMul.
 */
function gatherPatchesByTap(src: Float32Array, dst: Float32Array, g: PatchGeometry): void {
  const { batch, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = g;
  const positions = batch * oh * ow;
  const step = g.strideWidth * c;
  for (let fy = 0; fy < g.filterHeight; fy++) {
    for (let fx = 0; fx < g.filterWidth; fx++) {
      const [first, end] = validColumns(g, fx);
      for (let ch = 0; ch < c; ch++) {
        let o = ((fy * g.filterWidth + fx) * c + ch) * positions;
        for (let n = 0; n < batch; n++) {
          for (let oy = 0; oy < oh; oy++, o += ow) {
            const iy = oy * g.strideHeight + fy - g.padTop;
            if (iy < 0 || iy >= h || first >= end) {
              dst.fill(0, o, o + ow);
              continue;
            }
            if (first > 0) dst.fill(0, o, o + first);
            if (end < ow) dst.fill(0, o + end, o + ow);
            let i = ((n * h + iy) * w + first * g.strideWidth + fx - g.padLeft) * c + ch;
            for (let ox = o + first, stop = o + end; ox < stop; ox++, i += step) dst[ox] = src[i]!;
          }
        }
      }
    }
  }
}

/**
 * col2im: adds each patch gradient cols[(n*OH + oy)*OW + ox][(fy*FW + fx)*C + c] back onto the
 * input pixel it came from. dx must start zeroed; padding taps are dropped.
 */
function scatterPatches(cols: Float32Array, dx: Float32Array, g: PatchGeometry): void {
  const { batch, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = g;
  const tapsPerPatch = g.filterHeight * g.filterWidth * c;
  for (let fy = 0; fy < g.filterHeight; fy++) {
    for (let fx = 0; fx < g.filterWidth; fx++) {
      const [first, end] = validColumns(g, fx);
      const tap = (fy * g.filterWidth + fx) * c;
      for (let n = 0; n < batch; n++) {
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * g.strideHeight + fy - g.padTop;
          if (iy < 0 || iy >= h) continue;
          let to = ((n * h + iy) * w + first * g.strideWidth + fx - g.padLeft) * c;
          let from = ((n * oh + oy) * ow + first) * tapsPerPatch + tap;
          for (let ox = first; ox < end; ox++, to += g.strideWidth * c, from += tapsPerPatch) {
            for (let ch = 0; ch < c; ch++) dx[to + ch]! += cols[from + ch]!;
          }
        }
      }
    }
  }
}
function maxPoolGrad(
  x: Float32Array,
  dyValues: Float32Array,
  dxValues: Float32Array,
  g: PatchGeometry,
): void {
  const { batch: batchSize, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = g;
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw, padTop, padLeft } = g;
  dxValues.fill(0);
  const rowStride = w * c;
  const inside = 2 * oh <= h && 2 * ow <= w;
  if (fh === 2 && fw === 2 && sh === 2 && sw === 2 && padTop === 0 && padLeft === 0 && inside) {
    pool2x2Grad(x, dyValues, dxValues, batchSize, h, w, c, oh, ow);
    return;
  }
  let d = 0;
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < oh; oy++) {
      const y0 = Math.max(0, oy * sh - padTop);
      const y1 = Math.min(h, oy * sh - padTop + fh);
      for (let ox = 0; ox < ow; ox++) {
        const x0 = Math.max(0, ox * sw - padLeft);
        const x1 = Math.min(w, ox * sw - padLeft + fw);
        const corner = ((n * h + y0) * w + x0) * c;
        for (let ch = 0; ch < c; ch++, d++) {
          let best = Number.NEGATIVE_INFINITY;
          let at = -1;
          for (let iy = y0, row = corner + ch; iy < y1; iy++, row += rowStride) {
            for (let ix = x0, i = row; ix < x1; ix++, i += c) {
              if (x[i]! > best) {
                best = x[i]!;
                at = i;
              }
            }
          }
          if (at >= 0) dxValues[at]! += dyValues[d]!;
        }
      }
    }
  }
}

/**
 * The 2x2, stride 2, unpadded window of nearly every CNN, this one included, without the
 * general loop's bounds arithmetic: about twice as fast on the seed's shapes.
 */
function pool2x2Grad(
  x: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  batch: number,
  h: number,
  w: number,
  c: number,
  oh: number,
  ow: number,
): void {
  const right = c;
  const below = w * c;
  let d = 0;
  for (let n = 0; n < batch; n++) {
    for (let oy = 0; oy < oh; oy++) {
      let corner = (n * h + 2 * oy) * w * c;
      for (let ox = 0; ox < ow; ox++, corner += 2 * c) {
        for (let ch = 0; ch < c; ch++, d++) {
          // Strict '>' from -Infinity in reading order, as on cpu: the first of equal maxima wins
          // and a NaN never does (an all-NaN window gets no gradient).
          const p = corner + ch;
          let best = Number.NEGATIVE_INFINITY;
          let at = -1;
          if (x[p]! > best) best = x[(at = p)]!;
          if (x[p + right]! > best) best = x[(at = p + right)]!;
          if (x[p + below]! > best) best = x[(at = p + below)]!;
          if (x[p + below + right]! > best) at = p + below + right;
          if (at >= 0) dx[at]! += dy[d]!;
        }
      }
    }
  }
}
