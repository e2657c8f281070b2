import * as tf from '@tensorflow/tfjs';
import { IMAGE_HEIGHT, IMAGE_WIDTH, NUM_CLASSES } from './data/dataset.js';
import { inferencePlan, type ForwardPass } from './inference-plan.js';

export const PIXELS = IMAGE_HEIGHT * IMAGE_WIDTH;

export interface Prediction {
  label: number;
  confidence: number;
  probabilities: number[];
}

/**
 * Class probabilities for a batch of 28x28 images (784 floats each, 0..1, ink high as in MNIST)
 * in one model call. Every tensor is freed before it returns.
 */
// One plan per model, made on its first prediction and gone with the model.
const plans = new WeakMap<tf.LayersModel, ForwardPass>();

export function predictBatch(model: tf.LayersModel, images: readonly Float32Array[]): Prediction[] {
  if (images.length === 0) return [];
  const input = new Float32Array(images.length * PIXELS);
  images.forEach((image, i) => {
    if (image.length !== PIXELS)
      throw new RangeError(`image ${i} has ${image.length} values, expected ${PIXELS}`);
    input.set(image, i * PIXELS);
  });
  let plan = plans.get(model);
  if (!plan) plans.set(model, (plan = inferencePlan(model)));
  const forward = plan;
  const probabilities = tf.tidy(() => {
    const logits = forward(tf.tensor4d(input, [images.length, IMAGE_HEIGHT, IMAGE_WIDTH, 1]));
    return tf.softmax(logits).dataSync() as Float32Array;
  });
  return images.map((_, i) => {
    const row = Array.from(probabilities.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES));
    let label = 0;
    for (let c = 1; c < NUM_CLASSES; c++) if (row[c]! > row[label]!) label = c;
    return { label, confidence: row[label]!, probabilities: row };
  });
}
