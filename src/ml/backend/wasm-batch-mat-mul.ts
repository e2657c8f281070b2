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
 * run about 10x slower than the plain one (64x400 by 400x120: 3.2-3.8 ms against 0.28 ms), and
 * every dense layer's backward pass asks for them. Transposing the operand first costs far less.
 */
export function wasmBatchMatMulConfig(shipped: KernelConfig, k: WasmKernels): KernelConfig {
  const kernelFunc = (args: {
    inputs: { a: TensorInfo; b: TensorInfo };
    backend: BackendWasm;
    attrs: BatchMatMulAttrs;
  }): TensorInfo => {
    const { inputs, backend, attrs } = args;
    if (!attrs.transposeA && !attrs.transposeB) return shipped.kernelFunc(args as never) as TensorInfo;
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
      return matMul(k, backend, plain(inputs.a, attrs.transposeA), plain(inputs.b, attrs.transposeB));
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
