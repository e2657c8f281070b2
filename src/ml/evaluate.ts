import * as tf from '@tensorflow/tfjs';
import { NUM_CLASSES, type ImageSet } from './data/dataset.js';
import { BatchMaker } from './batches.js';
import { range } from './random.js';
import type { Misclassified } from './training-report-schema.js';

export interface Evaluation {
  count: number;
  loss: number;
  accuracy: number;
  /** confusion[true][predicted] counts. */
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
  const confusion = Array.from({ length: NUM_CLASSES }, () => new Array<number>(NUM_CLASSES).fill(0));
  const misclassified: Misclassified[] = [];
  const maker = new BatchMaker(set);
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
      const row = probabilities.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES);
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

function argMax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
