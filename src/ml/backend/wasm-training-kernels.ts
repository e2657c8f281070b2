import * as tf from '@tensorflow/tfjs';
import { wasmConv2DBackpropFilterConfig } from './wasm-conv2d-backprop-filter.js';

let registered = false;

/** Registers (or replaces) the wasm kernels that training needs. Call after importing the wasm backend. */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  for (const config of [wasmConv2DBackpropFilterConfig]) {
    if (tf.getKernel(config.kernelName, config.backendName)) {
      tf.unregisterKernel(config.kernelName, config.backendName);
    }
    tf.registerKernel(config);
  }
  registered = true;
}
