import {
  backend_util,
  MaxPoolGrad,
  type KernelConfig,
  type KernelFunc,
  type MaxPoolGradAttrs,
  type TensorInfo,
} from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapF32 } from './wasm-kernel-context.js';

/**
 * Max-pool gradient for wasm, replacing the shipped one (4.6 ms a call on the seed CNN's first
 * pool, 20x what a single pass costs). Routes each dy value to the first maximum of its window,
 * as the cpu backend does (strict '>' from -Infinity, so an all-NaN window gets no gradient).
 */
function maxPoolGrad(args: {
  inputs: { dy: TensorInfo; input: TensorInfo; output: TensorInfo };
  backend: BackendWasm;
  attrs: MaxPoolGradAttrs;
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { dy, input } = inputs;
  if (input.dtype !== 'float32' || dy.dtype !== 'float32') {
    throw new Error(`MaxPoolGrad on wasm needs float32 tensors, got ${input.dtype}, ${dy.dtype}`);
  }
  const info = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = info;
  const { top: padTop, left: padLeft } = info.padInfo;

  const dx = backend.makeOutput([...input.shape], 'float32');
  const x = heapF32(backend, input);
  const dyValues = heapF32(backend, dy);
  const dxValues = heapF32(backend, dx);
  dxValues.fill(0);
  const rowStride = w * c;
  const inside = 2 * oh <= h && 2 * ow <= w;
  if (fh === 2 && fw === 2 && sh === 2 && sw === 2 && padTop === 0 && padLeft === 0 && inside) {
    pool2x2Grad(x, dyValues, dxValues, batchSize, h, w, c, oh, ow);
    return dx;
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
  return dx;
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

export const wasmMaxPoolGradConfig: KernelConfig = {
  kernelName: MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as KernelFunc,
};
