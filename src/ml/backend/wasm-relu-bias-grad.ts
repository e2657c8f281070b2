import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapF32 } from './wasm-kernel-context.js';

/**
 * Our kernel (no tfjs op has this name): the backward pass of `relu(z + bias)` given its output
 * y and the gradient dy, both [..., C]. Outputs dz = dy where y > 0 else 0, and db = dz summed
 * over every axis but the last. One pass over the heap instead of Step, Multiply, Reshape and
 * Sum kernels.
 */
export const ReluBiasGrad = 'ReluBiasGrad';

function reluBiasGrad(args: {
  inputs: { dy: TensorInfo; y: TensorInfo };
  backend: BackendWasm;
}): TensorInfo[] {
  const { inputs, backend } = args;
  const { dy, y } = inputs;
  if (dy.dtype !== 'float32' || y.dtype !== 'float32') {
    throw new Error(`ReluBiasGrad on wasm needs float32 tensors, got ${dy.dtype}, ${y.dtype}`);
  }
  if (dy.shape.join() !== y.shape.join()) {
    throw new Error(`ReluBiasGrad needs dy and y of one shape, got [${dy.shape}] and [${y.shape}]`);
  }
  const channels = dy.shape.at(-1) ?? 1;
  const size = dy.shape.reduce((p, d) => p * d, 1);
  const dz = backend.makeOutput([...dy.shape], 'float32');
  const db = backend.makeOutput([channels], 'float32');
  // Views after both allocations: an allocation may grow (and so detach) the heap.
  const dyValues = heapF32(backend, dy);
  const yValues = heapF32(backend, y);
  const dzValues = heapF32(backend, dz);
  // Double sums: a batch of 64 adds up to 43,000 terms per channel on the seed's first layer.
  const sums = new Float64Array(channels);
  for (let row = 0; row < size; row += channels) {
    for (let c = 0, i = row; c < channels; c++, i++) {
      const g = yValues[i]! > 0 ? dyValues[i]! : 0;
      dzValues[i] = g;
      sums[c]! += g;
    }
  }
  heapF32(backend, db).set(sums);
  return [dz, db];
}

export const wasmReluBiasGradConfig: KernelConfig = {
  kernelName: ReluBiasGrad,
  backendName: 'wasm',
  kernelFunc: reluBiasGrad as unknown as KernelFunc,
};
