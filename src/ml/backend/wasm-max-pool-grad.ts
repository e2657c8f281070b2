import {
  backend_util,
  MaxPoolGrad,
  type KernelConfig,
  type KernelFunc,
  type MaxPoolGradAttrs,
  type TensorInfo,
} from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { patchGeometry } from './conv2d-patches.js';
import type { WasmKernels } from './wasm-kernel-context.js';

/**
 * Max-pool gradient for wasm, replacing the shipped one, which is many times slower than the single
 * pass this takes (bench/RESULTS.md). Routes each dy value to the first maximum of its window,
 * as the cpu backend does.
 */
export function wasmMaxPoolGradConfig(k: WasmKernels): KernelConfig {
  const kernelFunc = (args: {
    inputs: { dy: TensorInfo; input: TensorInfo; output: TensorInfo };
    backend: BackendWasm;
    attrs: MaxPoolGradAttrs;
  }): TensorInfo => {
    const { inputs, backend, attrs } = args;
    const { dy, input } = inputs;
    if (input.dtype !== 'float32' || dy.dtype !== 'float32') {
      throw new Error(`MaxPoolGrad on wasm needs float32 tensors, got ${input.dtype}, ${dy.dtype}`);
    }
    const g = patchGeometry(
      backend_util.computePool2DInfo(
        input.shape as [number, number, number, number],
        attrs.filterSize,
        attrs.strides,
        1,
        attrs.pad,
        attrs.dimRoundingMode,
      ),
    );
    const dx = backend.makeOutput([...input.shape], 'float32');
    k.loops.maxPoolGrad(backend, input, dy, dx, g);
    return dx;
  };
  return {
    kernelName: MaxPoolGrad,
    backendName: 'wasm',
    kernelFunc: kernelFunc as unknown as KernelFunc,
  };
}
