import * as tf from '@tensorflow/tfjs';
import { IMAGE_PIXELS, IMAGE_SIDE } from './image-shape.js';
import { inferencePlan, type ForwardPass } from './inference-plan.js';

export interface Prediction {
  label: number;
  confidence: number;
  probabilities: number[];
}

/**
 * Class probabilities for a batch of 28x28 images (784 floats each, 0..1, ink high as in MNIST)
 * in one model call, as many per image as the model has outputs. Every tensor is freed before it
 * returns.
 */
// One plan per model, made on its first prediction and gone with the model.
const plans = new WeakMap<tf.LayersModel, ForwardPass>();

export function predictBatch(model: tf.LayersModel, images: readonly Float32Array[]): Prediction[] {
  if (images.length === 0) return [];
  const input = new Float32Array(images.length * IMAGE_PIXELS);
  images.forEach((image, i) => {
    if (image.length !== IMAGE_PIXELS)
      throw new RangeError(`image ${i} has ${image.length} values, expected ${IMAGE_PIXELS}`);
    input.set(image, i * IMAGE_PIXELS);
  });
  let plan = plans.get(model);
  if (!plan) plans.set(model, (plan = inferencePlan(model)));
  const forward = plan;
  const probabilities = tf.tidy(() => {
    const logits = forward(tf.tensor4d(input, [images.length, IMAGE_SIDE, IMAGE_SIDE, 1]));
    return tf.softmax(logits).dataSync() as Float32Array;
  });
  const classes = probabilities.length / images.length;
  return images.map((_, i) => {
    const row = Array.from(probabilities.subarray(i * classes, (i + 1) * classes));
    let label = 0;
    for (let c = 1; c < classes; c++) if (row[c]! > row[label]!) label = c;
    return { label, confidence: row[label]!, probabilities: row };
  });
}
