import * as tf from '@tensorflow/tfjs';
import { ReluBiasGrad } from './backend/wasm-relu-bias-grad.js';

export interface BiasActivationGrad {
  /** The gradient before the activation, shaped as dy. */
  dz: tf.Tensor;
  /** dz summed over every axis but the last: the bias gradient. */
  db: tf.Tensor1D;
}

/**
 * The backward pass of `activation(z + bias)` from its output y and gradient dy. For relu, one
 * pass on wasm (our ReluBiasGrad kernel); plain ops elsewhere, where no such kernel exists.
 */
export function biasActivationGrad(
  dy: tf.Tensor,
  y: tf.Tensor,
  activation: 'relu' | 'linear',
): BiasActivationGrad {
  const channels = dy.shape.at(-1) ?? 1;
  if (activation === 'linear') return { dz: dy, db: tf.sum(tf.reshape(dy, [-1, channels]), 0) };
  if (tf.getBackend() === 'wasm' && tf.getKernel(ReluBiasGrad, 'wasm')) {
    const [dz, db] = tf.engine().runKernel(ReluBiasGrad, { dy, y }) as [tf.Tensor, tf.Tensor1D];
    return { dz, db };
  }
  const dz = tf.mul(dy, tf.step(y));
  return { dz, db: tf.sum(tf.reshape(dz, [-1, channels]), 0) };
}
