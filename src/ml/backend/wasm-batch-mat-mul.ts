import {
  BatchMatMul,
  type BatchMatMulAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { matMul, transposeLast2, viewAs, type WasmKernels } from './wasm-kernel-context.js';

/**
 * BatchMatMul for wasm that never asks the shipped kernel for a transpose: its transposed paths
 * run an order of magnitude slower than the plain one, and every dense layer's backward pass asks
 * for them. Transposing the operand first costs far less.
 * Single matrices go to our unpacked SIMD product, which skips the shipped one's packing of b.
 */
export function wasmBatchMatMulConfig(shipped: KernelConfig, k: WasmKernels): KernelConfig {
  const kernelFunc = (args: {
    inputs: { a: TensorInfo; b: TensorInfo };
    backend: BackendWasm;
    attrs: BatchMatMulAttrs;
  }): TensorInfo => {
    const { inputs, backend, attrs } = args;
    const unpacked = k.loops.matMulUnpacked && singleFloatMatrices(inputs.a, inputs.b, attrs);
    if (!unpacked && !attrs.transposeA && !attrs.transposeB)
      return shipped.kernelFunc(args as never) as TensorInfo;
    const temporaries: TensorInfo[] = [];
    const plain = (t: TensorInfo, transposed: boolean): TensorInfo => {
      if (!transposed) return t;
      const rank = t.shape.length;
      const rows = t.shape[rank - 2]!;
      const cols = t.shape[rank - 1]!;
      const outer = t.shape.slice(0, -2);
      const batch = outer.reduce((p, d) => p * d, 1);
      const swapped = transposeLast2(k, backend, viewAs(t, [batch, rows, cols]));
      temporaries.push(swapped);
      return viewAs(swapped, [...outer, cols, rows]);
    };
    try {
      const a = plain(inputs.a, attrs.transposeA);
      const b = plain(inputs.b, attrs.transposeB);
      if (!unpacked) return matMul(k, backend, a, b);
      const [m, depth] = a.shape.slice(-2) as [number, number];
      const n = b.shape[b.shape.length - 1]!;
      const outer = (a.shape.length > b.shape.length ? a : b).shape.slice(0, -2);
      const c = backend.makeOutput([...outer, m, n], 'float32');
      k.loops.matMulUnpacked!(
        backend,
        viewAs(a, [1, m, depth]),
        viewAs(b, [1, depth, n]),
        viewAs(c, [1, m, n]),
      );
      return c;
    } finally {
      for (const t of temporaries) backend.disposeData(t.dataId);
    }
  };
  return {
    kernelName: BatchMatMul,
    backendName: 'wasm',
    // The shipped setup binds the C++ function that the plain path still calls.
    ...(shipped.setupFunc ? { setupFunc: shipped.setupFunc } : {}),
    kernelFunc: kernelFunc as unknown as KernelFunc,
  };
}

/**
 * One float32 matrix each (any leading dimensions are 1) with at least 4 output columns: the
 * shapes our unpacked product takes. The shipped one packs b first, once per tensor, and in
 * training every b is new, so the packing is never paid back.
 */
function singleFloatMatrices(a: TensorInfo, b: TensorInfo, attrs: BatchMatMulAttrs): boolean {
  const single = (t: TensorInfo) => t.shape.slice(0, -2).every((d) => d === 1);
  const n = attrs.transposeB ? b.shape[b.shape.length - 2]! : b.shape[b.shape.length - 1]!;
  return a.dtype === 'float32' && b.dtype === 'float32' && single(a) && single(b) && n >= 4;
}
