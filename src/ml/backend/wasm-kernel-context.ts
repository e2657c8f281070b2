import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { PatchGeometry } from './conv2d-patches.js';

/**
 * What our wasm kernels share: the backend, the shipped kernels they build on, and heap views.
 * Kernels call other kernels' functions directly (as tfjs's own backends do), so the engine
 * sees one kernel and its intermediate buffers are ours to free.
 */
export interface WasmKernels {
  /** The shipped BatchMatMul: fast without transposes, an order of magnitude slower with them. */
  matMul: KernelFunc;
  transpose: KernelFunc;
  /** The shipped Conv2D (XNNPACK): several times faster than any loop of ours. */
  conv2d: KernelFunc;
  /** Our loops that no shipped kernel does (wasm SIMD in production, see simd-training-loops.ts). */
  loops: TrainingLoops;
}

/** Loops over tensors in the wasm heap; each writes all of its output. */
export interface TrainingLoops {
  /**
   * im2col with one row per filter tap: patches[(fy*FW + fx)*C + c][(n*OH + oy)*OW + ox] is the
   * input pixel that tap sees at that output position (0 in the padding).
   */
  gatherPatchesByTap(backend: BackendWasm, x: TensorInfo, patches: TensorInfo, g: PatchGeometry): void;
  /**
   * col2im: dx is the sum of each patch gradient cols[(n*OH + oy)*OW + ox][(fy*FW + fx)*C + c]
   * at the input pixel it came from; padding taps are dropped.
   */
  scatterPatches(backend: BackendWasm, cols: TensorInfo, dx: TensorInfo, g: PatchGeometry): void;
  /**
   * Routes each dy value to the first maximum of its window in reading order, as the cpu backend
   * does (strict '>' from -Infinity, so an all-NaN window gets no gradient).
   */
  maxPoolGrad(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, dx: TensorInfo, g: PatchGeometry): void;
  /**
   * c = a x b for a [m, k] and b [k, n >= 4], reading b where it lies: the shipped BatchMatMul
   * first packs b, once per tensor, which costs more than the whole product on the filter
   * gradient's shapes. Absent where only the shipped one is to be used.
   */
  matMulUnpacked?(backend: BackendWasm, a: TensorInfo, b: TensorInfo, c: TensorInfo): void;
}

export function heapF32(backend: BackendWasm, t: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(t) as Float32Array;
}

/** A tensor seen with another shape of the same size, sharing its buffer (no copy). */
export function viewAs(t: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

/** Plain a[b, m, k] x b[b, k, n]; transposes are done by the caller where they are cheap. */
export function matMul(k: WasmKernels, backend: BackendWasm, a: TensorInfo, b: TensorInfo): TensorInfo {
  return k.matMul({
    inputs: { a, b },
    backend,
    attrs: { transposeA: false, transposeB: false },
  }) as TensorInfo;
}

/** Swaps the last two axes of a rank-3 tensor into a new buffer. */
export function transposeLast2(k: WasmKernels, backend: BackendWasm, t: TensorInfo): TensorInfo {
  return k.transpose({ inputs: { x: t }, backend, attrs: { perm: [0, 2, 1] } }) as TensorInfo;
}
