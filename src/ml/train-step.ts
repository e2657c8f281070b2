import * as tf from '@tensorflow/tfjs';
import type { Batch } from './batches.js';
import { fusedAdam, type FlatApply } from './fused-adam.js';
import { trainingPlan } from './training-plan.js';
import { setLearningRate } from './optimizers.js';

/** Where a step sits in a run: what per-step randomness (dropout) is derived from. */
export interface StepContext {
  /** 0-based count of optimizer steps since the run's first epoch (a resumed run continues it). */
  step: number;
  /** Which data-parallel replica computes this slice of the batch; 0 when training alone. */
  replica: number;
}

export interface StepStats {
  /** Sum (not mean) of the per-image losses over the slice. */
  lossSum: number;
  /** Images of the slice the model got right. */
  hits: number;
}

/**
 * One training step split in two, so data-parallel replicas can average their gradients between
 * the halves: `gradients` on a slice of the batch, then `apply` with the mean over all slices.
 * Gradients travel flat: the trainable weights in the model's order, each flattened row-major.
 */
export interface TrainStepper {
  /** Floats in one flat gradient. */
  readonly gradientSize: number;
  /**
   * Forward and backward over one batch (or a replica's slice of it): writes the gradient of the
   * SUM of the per-image losses into `into`, so slices add up to the whole batch's.
   */
  gradients(batch: Batch, into: Float32Array, context: StepContext): StepStats;
  /** Optimizer step `step` (StepContext.step) with the mean gradient over the whole batch. */
  apply(meanGradient: Float32Array, step: number): void;
  /** Frees what the stepper owns (never the model or the optimizer). */
  dispose(): void;
}

/**
 * The stepper training uses: the fastest one that handles this model and optimizer here.
 * Gradients come from the training plan (fused forward, hand-written backward) when it knows
 * every layer, else from autodiff; Adam's update runs on all weights at once on wasm, else the
 * optimizer's own. Each half falls back on its own, and every path gives tfjs's result.
 * `schedule`, when given, sets the optimizer's learning rate for each step before its update.
 * Every data-parallel replica must build its stepper with this same function, so they agree.
 */
export function createTrainStepper(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  schedule?: (step: number) => number,
): TrainStepper {
  const reference = autodiffStepper(model, optimizer);
  const gradients = trainingPlan(model);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const plain = optimizerUpdate(optimizer, variables);
  const update = fusedAdam(optimizer, variables, plain) ?? plain;
  return {
    gradientSize: reference.gradientSize,
    gradients: gradients ?? ((batch, into, context) => reference.gradients(batch, into, context)),
    apply(mean, step) {
      if (schedule) setLearningRate(optimizer, schedule(step));
      update(mean);
    },
    dispose: () => reference.dispose(),
  };
}

/**
 * The reference stepper: tfjs's autodiff through the Layers model and the optimizer's own update.
 * Works for any model and optimizer, on any backend.
 */
export function autodiffStepper(model: tf.LayersModel, optimizer: tf.Optimizer): TrainStepper {
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const gradientSize = variables.reduce((sum, v) => sum + v.size, 0);
  return {
    gradientSize,
    gradients(batch, into) {
      return tf.tidy(() => {
        const { images, labels } = batch;
        let hits: tf.Tensor | undefined;
        const { value, grads } = tf.variableGrads(() => {
          const logits = model.apply(images, { training: true }) as tf.Tensor2D;
          hits = tf.keep(tf.sum(tf.equal(tf.argMax(logits, 1), tf.argMax(labels, 1))));
          return tf.losses.softmaxCrossEntropy(
            labels,
            logits,
            undefined,
            undefined,
            tf.Reduction.SUM,
          ) as tf.Scalar;
        }, variables);
        let offset = 0;
        for (const v of variables) {
          into.set(grads[v.name]!.dataSync(), offset);
          offset += v.size;
        }
        const stats = { lossSum: value.dataSync()[0]!, hits: hits!.dataSync()[0]! };
        hits!.dispose();
        return stats;
      });
    },
    apply: optimizerUpdate(optimizer, variables),
    dispose() {},
  };
}

/** The optimizer's own update from a flat mean gradient: works for any optimizer, on any backend. */
function optimizerUpdate(optimizer: tf.Optimizer, variables: tf.Variable[]): FlatApply {
  return (meanGradient) =>
    tf.tidy(() => {
      let offset = 0;
      const named: tf.NamedTensorMap = {};
      for (const v of variables) {
        named[v.name] = tf.tensor(meanGradient.subarray(offset, offset + v.size), v.shape);
        offset += v.size;
      }
      optimizer.applyGradients(named);
    });
}
