import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { viewAs } from './wasm-kernel-context.js';

/**
 * Our kernel (no tfjs op has this name): the backward pass of `relu(z + bias)` given its output
 * y and the gradient dy, both [..., C]. Outputs dz = dy * step(y), as tfjs's relu gradient, and
 * db = dz summed over every axis but the last.
 */
export const ReluBiasGrad = 'ReluBiasGrad';

/**
 * Built on the shipped SIMD kernels, called directly: one kernel for the engine, and the mask
 * freed inside: faster than a single pass in JavaScript over the heap (a bit mask, then
 * per-channel sums).
 */
export function wasmReluBiasGradConfig(): KernelConfig {
  const [step, multiply, sum] = ['Step', 'Multiply', 'Sum'].map((name) => {
    const config = tf.getKernel(name, 'wasm');
    if (!config) throw new Error(`the wasm backend has no '${name}' kernel`);
    return config.kernelFunc;
  }) as [KernelFunc, KernelFunc, KernelFunc];
  const kernelFunc = (args: { inputs: { dy: TensorInfo; y: TensorInfo }; backend: BackendWasm }) => {
    const { inputs, backend } = args;
    const { dy, y } = inputs;
    if (dy.dtype !== 'float32' || y.dtype !== 'float32') {
      throw new Error(`ReluBiasGrad on wasm needs float32 tensors, got ${dy.dtype}, ${y.dtype}`);
    }
    if (dy.shape.join() !== y.shape.join()) {
      throw new Error(`ReluBiasGrad needs dy and y of one shape, got [${dy.shape}] and [${y.shape}]`);
    }
    const channels = dy.shape.at(-1) ?? 1;
    const mask = step({ inputs: { x: y }, backend, attrs: { alpha: 0 } }) as TensorInfo;
    try {
      const dz = multiply({ inputs: { a: dy, b: mask }, backend }) as TensorInfo;
      const rows = viewAs(dz, [dz.shape.reduce((p, d) => p * d, 1) / channels, channels]);
      const db = sum({ inputs: { x: rows }, backend, attrs: { axis: [0], keepDims: false } }) as TensorInfo;
      return [dz, db];
    } finally {
      backend.disposeData(mask.dataId);
    }
  };
  return { kernelName: ReluBiasGrad, backendName: 'wasm', kernelFunc: kernelFunc as unknown as KernelFunc };
}
