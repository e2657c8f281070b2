// The inner loops of our wasm training kernels (src/ml/backend/), in AssemblyScript with SIMD.
// The module imports the tfjs wasm backend's own memory and works on its tensors in place: every
// argument named a pointer is a byte address in that heap. It has no data, no stack and no
// globals of its own, so it never writes anywhere it was not pointed to.
// Build: npm run build:kernels (flags in package.json). Shapes are NHWC, values float32.

const F = 4; // bytes per float32

/** First output column whose input column for a tap at offset `offset` lies inside the image. */
function firstColumn(offset: i32, sw: i32, ow: i32): i32 {
  const first = offset >= 0 ? 0 : (-offset + sw - 1) / sw;
  return min(first, ow);
}

/** One past the last such column (0 when there is none). */
function endColumn(offset: i32, w: i32, sw: i32, ow: i32): i32 {
  const last = w - 1 - offset;
  return last < 0 ? 0 : min(ow, last / sw + 1);
}

/**
 * im2col with one row per filter tap: dst[(fy*FW + fx)*C + c][(n*OH + oy)*OW + ox] is the input
 * pixel that tap sees at that output position, 0 in the padding. Per output row, four channels
 * at a time: four pixels' channels are loaded as four vectors and transposed into four rows.
 */
export function gatherPatchesByTap(
  src: usize,
  dst: usize,
  batch: i32,
  h: i32,
  w: i32,
  c: i32,
  oh: i32,
  ow: i32,
  fh: i32,
  fw: i32,
  sh: i32,
  sw: i32,
  padTop: i32,
  padLeft: i32,
): void {
  const positions = batch * oh * ow;
  const rowBytes = <usize>positions * F; // from one tap row of dst to the next
  const pixelStep = <usize>(sw * c) * F; // from one output column's input pixel to the next
  const c4 = c & ~3;
  for (let fy = 0; fy < fh; fy++) {
    for (let fx = 0; fx < fw; fx++) {
      const offset = fx - padLeft;
      const first = firstColumn(offset, sw, ow);
      const end = endColumn(offset, w, sw, ow);
      const tapRows = dst + <usize>((fy * fw + fx) * c) * rowBytes;
      for (let n = 0; n < batch; n++) {
        for (let oy = 0; oy < oh; oy++) {
          const out = tapRows + <usize>((n * oh + oy) * ow) * F;
          const iy = oy * sh + fy - padTop;
          if (iy < 0 || iy >= h || first >= end) {
            for (let ch = 0; ch < c; ch++) memory.fill(out + <usize>ch * rowBytes, 0, <usize>ow * F);
            continue;
          }
          if (first > 0 || end < ow) {
            for (let ch = 0; ch < c; ch++) {
              const row = out + <usize>ch * rowBytes;
              memory.fill(row, 0, <usize>first * F);
              memory.fill(row + <usize>end * F, 0, <usize>(ow - end) * F);
            }
          }
          const pixels = src + <usize>(((n * h + iy) * w + first * sw + offset) * c) * F;
          const count = end - first;
          const count4 = count & ~3;
          for (let ch = 0; ch < c4; ch += 4) {
            const row0 = out + <usize>ch * rowBytes + <usize>first * F;
            let from = pixels + <usize>ch * F;
            for (let i = 0; i < count4; i += 4) {
              const p0 = v128.load(from);
              const p1 = v128.load(from + pixelStep);
              const p2 = v128.load(from + 2 * pixelStep);
              const p3 = v128.load(from + 3 * pixelStep);
              const lo01 = i32x4.shuffle(p0, p1, 0, 4, 1, 5);
              const lo23 = i32x4.shuffle(p2, p3, 0, 4, 1, 5);
              const hi01 = i32x4.shuffle(p0, p1, 2, 6, 3, 7);
              const hi23 = i32x4.shuffle(p2, p3, 2, 6, 3, 7);
              const to = row0 + <usize>i * F;
              v128.store(to, i32x4.shuffle(lo01, lo23, 0, 1, 4, 5));
              v128.store(to + rowBytes, i32x4.shuffle(lo01, lo23, 2, 3, 6, 7));
              v128.store(to + 2 * rowBytes, i32x4.shuffle(hi01, hi23, 0, 1, 4, 5));
              v128.store(to + 3 * rowBytes, i32x4.shuffle(hi01, hi23, 2, 3, 6, 7));
              from += 4 * pixelStep;
            }
            for (let i = count4; i < count; i++, from += pixelStep) {
              const to = row0 + <usize>i * F;
              store<u32>(to, load<u32>(from));
              store<u32>(to + rowBytes, load<u32>(from, 4));
              store<u32>(to + 2 * rowBytes, load<u32>(from, 8));
              store<u32>(to + 3 * rowBytes, load<u32>(from, 12));
            }
          }
          for (let ch = c4; ch < c; ch++) {
            const to = out + <usize>ch * rowBytes + <usize>first * F;
            let from = pixels + <usize>ch * F;
            if (pixelStep == F) {
              // One channel at stride 1: the row is a straight copy.
              memory.copy(to, from, <usize>count * F);
              continue;
            }
            for (let i = 0; i < count; i++, from += pixelStep) store<u32>(to + <usize>i * F, load<u32>(from));
          }
        }
      }
    }
  }
}

/**
 * col2im: adds each patch gradient cols[(n*OH + oy)*OW + ox][(fy*FW + fx)*C + c] onto the input
 * pixel it came from, four channels at a time. dx must start zeroed; padding taps are dropped.
 * Each dx value receives its terms in the same order as a scalar loop over (fy, fx, n, oy, ox).
 */
export function scatterPatches(
  cols: usize,
  dx: usize,
  batch: i32,
  h: i32,
  w: i32,
  c: i32,
  oh: i32,
  ow: i32,
  fh: i32,
  fw: i32,
  sh: i32,
  sw: i32,
  padTop: i32,
  padLeft: i32,
): void {
  memory.fill(dx, 0, <usize>(batch * h * w * c) * F);
  const patchBytes = <usize>(fh * fw * c) * F;
  const pixelStep = <usize>(sw * c) * F;
  const c4 = c & ~3;
  for (let fy = 0; fy < fh; fy++) {
    for (let fx = 0; fx < fw; fx++) {
      const offset = fx - padLeft;
      const first = firstColumn(offset, sw, ow);
      const end = endColumn(offset, w, sw, ow);
      const tap = <usize>((fy * fw + fx) * c) * F;
      for (let n = 0; n < batch; n++) {
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * sh + fy - padTop;
          if (iy < 0 || iy >= h) continue;
          let to = dx + <usize>(((n * h + iy) * w + first * sw + offset) * c) * F;
          let from = cols + <usize>((n * oh + oy) * ow + first) * patchBytes + tap;
          for (let ox = first; ox < end; ox++, to += pixelStep, from += patchBytes) {
            for (let ch = 0; ch < c4; ch += 4) {
              const at = <usize>ch * F;
              v128.store(to + at, f32x4.add(v128.load(to + at), v128.load(from + at)));
            }
            for (let ch = c4; ch < c; ch++) {
              const at = <usize>ch * F;
              store<f32>(to + at, load<f32>(to + at) + load<f32>(from + at));
            }
          }
        }
      }
    }
  }
}

/**
 * Max-pool gradient: routes each dy value to the first maximum of its window in reading order
 * (strict '>' from -Infinity, so a NaN never wins and an all-NaN window gets no gradient).
 * Writes all of dx.
 */
export function maxPoolGrad(
  x: usize,
  dy: usize,
  dx: usize,
  batch: i32,
  h: i32,
  w: i32,
  c: i32,
  oh: i32,
  ow: i32,
  fh: i32,
  fw: i32,
  sh: i32,
  sw: i32,
  padTop: i32,
  padLeft: i32,
): void {
  if (fh == 2 && fw == 2 && sh == 2 && sw == 2 && padTop == 0 && padLeft == 0 && 2 * oh <= h && 2 * ow <= w) {
    if (c >= 4) pool2x2GradByChannels(x, dy, dx, batch, h, w, c, oh, ow);
    else pool2x2GradScalar(x, dy, dx, batch, h, w, c, oh, ow);
    zeroUncovered(dx, batch, h, w, c, 2 * oh, 2 * ow);
    return;
  }
  memory.fill(dx, 0, <usize>(batch * h * w * c) * F);
  const c4 = c & ~3;
  const laneOffsets = i32x4(0, 1, 2, 3);
  let d = dy;
  for (let n = 0; n < batch; n++) {
    for (let oy = 0; oy < oh; oy++) {
      const y0 = max(0, oy * sh - padTop);
      const y1 = min(h, oy * sh - padTop + fh);
      for (let ox = 0; ox < ow; ox++) {
        const x0 = max(0, ox * sw - padLeft);
        const x1 = min(w, ox * sw - padLeft + fw);
        const corner = ((n * h + y0) * w + x0) * c; // element index
        for (let ch = 0; ch < c4; ch += 4, d += 4 * F) {
          let best = f32x4.splat(-Infinity);
          let at = i32x4.splat(-1);
          for (let iy = y0, row = corner + ch; iy < y1; iy++, row += w * c) {
            for (let ix = x0, i = row; ix < x1; ix++, i += c) {
              const v = v128.load(x + <usize>i * F);
              const wins = f32x4.gt(v, best);
              best = v128.bitselect(v, best, wins);
              at = v128.bitselect(i32x4.add(i32x4.splat(i), laneOffsets), at, wins);
            }
          }
          addAt(dx, i32x4.extract_lane(at, 0), load<f32>(d));
          addAt(dx, i32x4.extract_lane(at, 1), load<f32>(d, 4));
          addAt(dx, i32x4.extract_lane(at, 2), load<f32>(d, 8));
          addAt(dx, i32x4.extract_lane(at, 3), load<f32>(d, 12));
        }
        for (let ch = c4; ch < c; ch++, d += F) {
          let best: f32 = -Infinity;
          let at = -1;
          for (let iy = y0, row = corner + ch; iy < y1; iy++, row += w * c) {
            for (let ix = x0, i = row; ix < x1; ix++, i += c) {
              const v = load<f32>(x + <usize>i * F);
              if (v > best) {
                best = v;
                at = i;
              }
            }
          }
          addAt(dx, at, load<f32>(d));
        }
      }
    }
  }
}

function addAt(dx: usize, at: i32, value: f32): void {
  if (at >= 0) {
    const p = dx + <usize>at * F;
    store<f32>(p, load<f32>(p) + value);
  }
}

/**
 * The 2x2, stride 2, unpadded window that covers the input: four channels at a time. Each window
 * writes its four dx values (dy at the winner, 0 elsewhere); the last group of channels may
 * overlap the one before it, which only rewrites the same values.
 */
function pool2x2GradByChannels(
  x: usize,
  dy: usize,
  dx: usize,
  batch: i32,
  h: i32,
  w: i32,
  c: i32,
  oh: i32,
  ow: i32,
): void {
  const right = <usize>c * F;
  const below = <usize>(w * c) * F;
  const lowest = f32x4.splat(-Infinity);
  const zero = f32x4.splat(0);
  for (let n = 0; n < batch; n++) {
    for (let oy = 0; oy < oh; oy++) {
      let corner = <usize>((n * h + 2 * oy) * w * c) * F;
      let d = dy + <usize>((n * oh + oy) * ow * c) * F;
      for (let ox = 0; ox < ow; ox++, corner += 2 * right, d += right) {
        for (let ch = 0; ch < c; ch += 4) {
          const at = <usize>min(ch, c - 4) * F;
          const p = x + corner + at;
          const a = v128.load(p);
          const b = v128.load(p + right);
          const e = v128.load(p + below);
          const f = v128.load(p + below + right);
          // Strict '>' in reading order: a later value wins only if greater than all before it.
          const winsA = f32x4.gt(a, lowest);
          let best = v128.bitselect(a, lowest, winsA);
          const winsB = f32x4.gt(b, best);
          best = v128.bitselect(b, best, winsB);
          const winsE = f32x4.gt(e, best);
          best = v128.bitselect(e, best, winsE);
          const winsF = f32x4.gt(f, best);
          const takenEF = v128.or(winsE, winsF);
          const takenBEF = v128.or(winsB, takenEF);
          const g = v128.load(d + at);
          // 0 + dy, as the scalar version adds onto a zeroed dx (so -0 becomes +0).
          const q = dx + corner + at;
          v128.store(q, f32x4.add(zero, v128.and(g, v128.andnot(winsA, takenBEF))));
          v128.store(q + right, f32x4.add(zero, v128.and(g, v128.andnot(winsB, takenEF))));
          v128.store(q + below, f32x4.add(zero, v128.and(g, v128.andnot(winsE, winsF))));
          v128.store(q + below + right, f32x4.add(zero, v128.and(g, winsF)));
        }
      }
    }
  }
}

/** The same window for fewer than four channels, one value at a time. */
function pool2x2GradScalar(
  x: usize,
  dy: usize,
  dx: usize,
  batch: i32,
  h: i32,
  w: i32,
  c: i32,
  oh: i32,
  ow: i32,
): void {
  const right = <usize>c * F;
  const below = <usize>(w * c) * F;
  for (let n = 0; n < batch; n++) {
    for (let oy = 0; oy < oh; oy++) {
      let corner = <usize>((n * h + 2 * oy) * w * c) * F;
      let d = dy + <usize>((n * oh + oy) * ow * c) * F;
      for (let ox = 0; ox < ow; ox++, corner += 2 * right) {
        for (let ch = 0; ch < c; ch++, d += F) {
          const p = x + corner + <usize>ch * F;
          const q = dx + corner + <usize>ch * F;
          store<f32>(q, 0);
          store<f32>(q + right, 0);
          store<f32>(q + below, 0);
          store<f32>(q + below + right, 0);
          let best: f32 = -Infinity;
          let at: usize = 0;
          let found = false;
          if (load<f32>(p) > best) {
            best = load<f32>(p);
            at = 0;
            found = true;
          }
          if (load<f32>(p + right) > best) {
            best = load<f32>(p + right);
            at = right;
            found = true;
          }
          if (load<f32>(p + below) > best) {
            best = load<f32>(p + below);
            at = below;
            found = true;
          }
          if (load<f32>(p + below + right) > best) {
            at = below + right;
            found = true;
          }
          if (found) store<f32>(q + at, <f32>0 + load<f32>(d));
        }
      }
    }
  }
}

/** Zeroes the bottom rows and right columns of dx that no 2x2 window covers (odd sizes). */
function zeroUncovered(dx: usize, batch: i32, h: i32, w: i32, c: i32, coveredH: i32, coveredW: i32): void {
  const pixel = <usize>c * F;
  for (let n = 0; n < batch; n++) {
    const image = dx + <usize>(n * h * w) * pixel;
    if (coveredW < w) {
      for (let y = 0; y < coveredH; y++) {
        memory.fill(image + <usize>(y * w + coveredW) * pixel, 0, <usize>(w - coveredW) * pixel);
      }
    }
    if (coveredH < h)
      memory.fill(image + <usize>(coveredH * w) * pixel, 0, <usize>((h - coveredH) * w) * pixel);
  }
}

/**
 * c[m x n] = a[m x k] x b[k x n], all row-major, n >= 4: the filter gradient's product of the
 * patches (one row per filter tap, k = every output position) with dy. The shipped BatchMatMul
 * first packs b into its own layout, once per tensor; in training every dy is new, and on these
 * shapes that packing cost more than the product. This reads b where it lies. Blocks of 4 rows
 * by 8 columns keep 8 sums in registers; the last blocks overlap the ones before them when m or
 * n is not a multiple, and recompute those sums identically. Each sum runs over k in order.
 */
export function matMulUnpacked(a: usize, b: usize, c: usize, m: i32, k: i32, n: i32): void {
  const aRow = <usize>k * F;
  const bRow = <usize>n * F;
  for (let j = 0; j < n; j += 8) {
    const j0 = <usize>min(j, n - 4) * F;
    const j1 = <usize>min(j + 4, n - 4) * F;
    for (let i = 0; i < m; i += 4) {
      const r = <usize>max(0, min(i, m - 4));
      const r1 = <usize>min(<i32>r + 1, m - 1);
      const r2 = <usize>min(<i32>r + 2, m - 1);
      const r3 = <usize>min(<i32>r + 3, m - 1);
      let p0 = a + r * aRow;
      let p1 = a + r1 * aRow;
      let p2 = a + r2 * aRow;
      let p3 = a + r3 * aRow;
      let q = b;
      let s00 = f32x4.splat(0);
      let s01 = f32x4.splat(0);
      let s10 = f32x4.splat(0);
      let s11 = f32x4.splat(0);
      let s20 = f32x4.splat(0);
      let s21 = f32x4.splat(0);
      let s30 = f32x4.splat(0);
      let s31 = f32x4.splat(0);
      for (let kk = 0; kk < k; kk++) {
        const b0 = v128.load(q + j0);
        const b1 = v128.load(q + j1);
        const a0 = v128.load32_splat(p0);
        const a1 = v128.load32_splat(p1);
        const a2 = v128.load32_splat(p2);
        const a3 = v128.load32_splat(p3);
        s00 = f32x4.add(s00, f32x4.mul(a0, b0));
        s01 = f32x4.add(s01, f32x4.mul(a0, b1));
        s10 = f32x4.add(s10, f32x4.mul(a1, b0));
        s11 = f32x4.add(s11, f32x4.mul(a1, b1));
        s20 = f32x4.add(s20, f32x4.mul(a2, b0));
        s21 = f32x4.add(s21, f32x4.mul(a2, b1));
        s30 = f32x4.add(s30, f32x4.mul(a3, b0));
        s31 = f32x4.add(s31, f32x4.mul(a3, b1));
        p0 += F;
        p1 += F;
        p2 += F;
        p3 += F;
        q += bRow;
      }
      v128.store(c + r3 * bRow + j0, s30);
      v128.store(c + r3 * bRow + j1, s31);
      v128.store(c + r2 * bRow + j0, s20);
      v128.store(c + r2 * bRow + j1, s21);
      v128.store(c + r1 * bRow + j0, s10);
      v128.store(c + r1 * bRow + j1, s11);
      v128.store(c + r * bRow + j0, s00);
      v128.store(c + r * bRow + j1, s01);
    }
  }
}
