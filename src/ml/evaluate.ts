import * as tf from '@tensorflow/tfjs';
import { outputClasses } from './architectures.js';
import type { ImageSet } from './data/dataset.js';
import { BatchMaker } from './batches.js';
import { range } from './random.js';
import type { Misclassified } from './training-report-schema.js';

export interface Evaluation {
  count: number;
  loss: number;
  accuracy: number;
  /** confusion[true][predicted] counts, classes x classes (the model's outputs). */
  confusion: number[][];
  /** The errors, most confident first; `misclassifiedLimit` caps how many are kept. */
  misclassified: Misclassified[];
}

export interface EvaluateOptions {
  batchSize?: number;
  misclassifiedLimit?: number;
}

/** Loss, accuracy, confusion matrix and errors of a logits model on a set, in inference mode. */
export function evaluate(model: tf.LayersModel, set: ImageSet, options: EvaluateOptions = {}): Evaluation {
  const batchSize = options.batchSize ?? 1000;
  const limit = options.misclassifiedLimit ?? Number.POSITIVE_INFINITY;
  const classes = outputClasses(model);
  checkLabels(set, classes);
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  const misclassified: Misclassified[] = [];
  const maker = new BatchMaker(set, classes);
  const order = range(set.count);
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < set.count; start += batchSize) {
    const end = Math.min(set.count, start + batchSize);
    const [loss, probabilities] = tf.tidy(() => {
      const batch = maker.make(order, start, end);
      const logits = model.predict(batch.images) as tf.Tensor2D;
      return [
        tf.losses
          .softmaxCrossEntropy(batch.labels, logits, undefined, undefined, tf.Reduction.SUM)
          .dataSync()[0]!,
        tf.softmax(logits).dataSync() as Float32Array,
      ] as const;
    });
    lossSum += loss;
    for (let i = 0; i < end - start; i++) {
      const row = probabilities.subarray(i * classes, (i + 1) * classes);
      const predicted = argMax(row);
      const label = set.labels[start + i]!;
      confusion[label]![predicted]!++;
      if (predicted === label) correct++;
      else misclassified.push({ index: start + i, label, predicted, confidence: row[predicted]! });
    }
  }
  misclassified.sort((a, b) => b.confidence - a.confidence);
  return {
    count: set.count,
    loss: set.count ? lossSum / set.count : Number.NaN,
    accuracy: set.count ? correct / set.count : Number.NaN,
    confusion,
    misclassified: misclassified.slice(0, limit),
  };
}

/** A label the model has no output for would count nowhere in the confusion matrix. */
function checkLabels(set: ImageSet, classes: number): void {
  const index = set.labels.findIndex((label) => label >= classes);
  if (index >= 0) {
    throw new RangeError(
      `label ${set.labels[index]} at index ${index} is beyond the model's ${classes} classes`,
    );
  }
}

function argMax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
