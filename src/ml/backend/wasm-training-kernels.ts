import * as tf from '@tensorflow/tfjs';
import { wasmBatchMatMulConfig } from './wasm-batch-mat-mul.js';
import { wasmConv2DBackpropFilterConfig } from './wasm-conv2d-backprop-filter.js';
import { wasmConv2DBackpropInputConfig } from './wasm-conv2d-backprop-input.js';
import type { WasmKernels } from './wasm-kernel-context.js';
import { wasmMaxPoolGradConfig } from './wasm-max-pool-grad.js';
import { wasmReluBiasGradConfig } from './wasm-relu-bias-grad.js';
import { simdTrainingLoops } from './simd-training-loops.js';

let registered = false;

/**
 * Registers the wasm kernels that training needs: the filter gradient it lacks, and faster
 * replacements for the gradient kernels that dominated a seed-CNN training step (bench/RESULTS.md).
 * Call after importing the wasm backend and before `tf.setBackend('wasm')`.
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  const shippedMatMul = shipped('BatchMatMul');
  const k: WasmKernels = {
    matMul: shippedMatMul.kernelFunc,
    transpose: shipped('Transpose').kernelFunc,
    conv2d: shipped('Conv2D').kernelFunc,
    loops: simdTrainingLoops(),
  };
  const configs = [
    wasmBatchMatMulConfig(shippedMatMul, k),
    wasmConv2DBackpropFilterConfig(k),
    wasmConv2DBackpropInputConfig(k),
    wasmMaxPoolGradConfig(k),
    wasmReluBiasGradConfig(),
  ];
  for (const config of configs) {
    if (tf.getKernel(config.kernelName, config.backendName)) {
      tf.unregisterKernel(config.kernelName, config.backendName);
    }
    tf.registerKernel(config);
  }
  registered = true;
}

function shipped(kernelName: string): tf.KernelConfig {
  const config = tf.getKernel(kernelName, 'wasm');
  if (!config)
    throw new Error(
      `the wasm backend has no '${kernelName}' kernel: is @tensorflow/tfjs-backend-wasm imported?`,
    );
  return config;
}
