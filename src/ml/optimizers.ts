import * as tf from '@tensorflow/tfjs';
import type { OptimizerName } from './train-params.js';

/** A fresh optimizer; every data-parallel replica builds its own with the same call. */
export function createOptimizer(name: OptimizerName, learningRate: number): tf.Optimizer {
  switch (name) {
    case 'adam':
      return tf.train.adam(learningRate);
    case 'sgd':
      return tf.train.sgd(learningRate);
    case 'momentum':
      return tf.train.momentum(learningRate, 0.9);
    case 'rmsprop':
      return tf.train.rmsprop(learningRate);
  }
}
