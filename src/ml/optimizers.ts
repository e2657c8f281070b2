import * as tf from '@tensorflow/tfjs';
import type { OptimizerName, TrainParams } from './train-params.js';

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

/**
 * The learning rate of optimizer step `step` (0-based, over the whole run) under the run's
 * schedule: a function of the step alone, so a resumed run and every data-parallel replica agree.
 */
export function learningRateAt(
  params: Pick<TrainParams, 'learningRate' | 'learningRateSchedule' | 'epochs'>,
  step: number,
  stepsPerEpoch: number,
): number {
  if (params.learningRateSchedule === 'constant') return params.learningRate;
  const progress = Math.min(1, step / (params.epochs * stepsPerEpoch));
  return params.learningRate * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/** Sets the rate the optimizer's next update uses (SGD keeps it as a tensor, so it needs the setter). */
export function setLearningRate(optimizer: tf.Optimizer, rate: number): void {
  // Not `instanceof`: tfjs makes any object with an optimizer's methods an instance of every optimizer.
  const withSetter = optimizer as unknown as { setLearningRate?: (rate: number) => void };
  if (typeof withSetter.setLearningRate === 'function') withSetter.setLearningRate(rate);
  else (optimizer as unknown as { learningRate: number }).learningRate = rate;
}

/** The run's learning rate as a function of the step; none when it is constant. */
export function learningRateSchedule(
  params: Pick<TrainParams, 'learningRate' | 'learningRateSchedule' | 'epochs'>,
  stepsPerEpoch: number,
): ((step: number) => number) | undefined {
  if (params.learningRateSchedule === 'constant') return undefined;
  return (step) => learningRateAt(params, step, stepsPerEpoch);
}
