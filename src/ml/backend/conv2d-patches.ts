import type { backend_util } from '@tensorflow/tfjs';

/** The index arithmetic of a 2-D NHWC convolution (dilation 1), taken from tfjs's own Conv2DInfo. */
export interface PatchGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
}

export function patchGeometry(info: backend_util.Conv2DInfo): PatchGeometry {
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) {
    throw new Error(
      `dilated convolutions are not supported here (dilation ${info.dilationHeight}x${info.dilationWidth})`,
    );
  }
  return {
    batch: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

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
export function gatherPatchesByTap(src: Float32Array, dst: Float32Array, g: PatchGeometry): void {
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
export function scatterPatches(cols: Float32Array, dx: Float32Array, g: PatchGeometry): void {
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
