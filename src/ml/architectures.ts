import * as tf from '@tensorflow/tfjs';
import { DIGIT_CLASSES } from './data/dataset.js';
import { IMAGE_SIDE } from './image-shape.js';
import { layerSeeds } from './random.js';
import { SeededDropout } from './seeded-dropout.js';
import type { Architecture } from './train-params.js';

const INPUT_SHAPE = [IMAGE_SIDE, IMAGE_SIDE, 1];

/**
 * Builds a fresh, uncompiled model whose output is logits (softmax lives in the loss, as in the
 * seed's nn.CrossEntropyLoss). Every random initializer and dropout layer gets its own seed
 * derived from `seed`, so a run is reproducible. A factory, never a module-level model: a
 * long-lived worker must not keep training the previous job's weights. `numClasses` sizes only
 * the last layer, whose seed is drawn last: the other layers' weights do not depend on it.
 */
export function buildModel(
  architecture: Architecture,
  seed: number,
  numClasses: number = DIGIT_CLASSES.length,
): tf.Sequential {
  if (!Number.isInteger(numClasses) || numClasses < 2) {
    throw new RangeError(`a model needs a whole number of classes from 2, got ${numClasses}`);
  }
  const seeds = layerSeeds(seed);
  return architecture === 'seed' ? seedCnn(seeds, numClasses) : wideCnn(seeds, numClasses);
}

/** The number of classes a logits model outputs: the size of its output's last dimension. */
export function outputClasses(model: tf.LayersModel): number {
  const shape = model.outputs[0]!.shape;
  return shape[shape.length - 1]!;
}

function init(seeds: () => number) {
  return {
    kernelInitializer: tf.initializers.glorotUniform({ seed: seeds() }),
    biasInitializer: 'zeros' as const,
  };
}

/**
 * The tutorial's network, layer for layer: 60 + 880 + 48,120 + 10,164 + 850 = 60,074 parameters
 * (with 10 classes; the last layer has 85 per class).
 */
function seedCnn(seeds: () => number, numClasses: number): tf.Sequential {
  return tf.sequential({
    name: 'seed',
    layers: [
      tf.layers.conv2d({
        inputShape: INPUT_SHAPE,
        filters: 6,
        kernelSize: 3,
        activation: 'relu',
        ...init(seeds),
      }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 16, kernelSize: 3, activation: 'relu', ...init(seeds) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 120, activation: 'relu', ...init(seeds) }),
      tf.layers.dense({ units: 84, activation: 'relu', ...init(seeds) }),
      tf.layers.dense({ units: numClasses, ...init(seeds) }),
    ],
  });
}

/**
 * For accuracy over speed: three conv layers of 32-64 filters (about 30x the seed's arithmetic)
 * and dropout against the overfitting that more filters bring. No batch norm: its gradient
 * kernels (Tile, Sum over the batch) are slow on wasm and the net trains well without it.
 */
function wideCnn(seeds: () => number, numClasses: number): tf.Sequential {
  return tf.sequential({
    name: 'wide',
    layers: [
      tf.layers.conv2d({
        inputShape: INPUT_SHAPE,
        filters: 32,
        kernelSize: 3,
        activation: 'relu',
        ...init(seeds),
      }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu', ...init(seeds) }),
      tf.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu', ...init(seeds) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      new SeededDropout({ rate: 0.25, seed: seeds() }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 128, activation: 'relu', ...init(seeds) }),
      new SeededDropout({ rate: 0.4, seed: seeds() }),
      tf.layers.dense({ units: numClasses, ...init(seeds) }),
    ],
  });
}
