import * as tf from '@tensorflow/tfjs';
import { NUM_CLASSES, type ImageSet } from './data/dataset.js';

export interface Batch {
  /** [n, height, width, 1], pixels scaled to [0, 1] as in the seed. */
  images: tf.Tensor4D;
  /** [n, 10] one-hot. */
  labels: tf.Tensor2D;
}

/**
 * Builds the tensors of one batch straight from the Uint8 images, picking `indices[start..end)`.
 * The caller owns (and disposes) the tensors. Reusing one scratch buffer per size keeps a
 * 50,000-image epoch from allocating 782 fresh Float32Arrays.
 */
export class BatchMaker {
  private pixels = new Float32Array(0);
  private classes = new Int32Array(0);

  constructor(private readonly set: ImageSet) {}

  make(indices: ArrayLike<number>, start: number, end: number): Batch {
    const { height, width, images, labels } = this.set;
    const size = height * width;
    const n = end - start;
    if (this.pixels.length < n * size) {
      this.pixels = new Float32Array(n * size);
      this.classes = new Int32Array(n);
    }
    const pixels = this.pixels.subarray(0, n * size);
    const classes = this.classes.subarray(0, n);
    for (let b = 0; b < n; b++) {
      const index = indices[start + b]!;
      const from = index * size;
      const to = b * size;
      for (let p = 0; p < size; p++) pixels[to + p] = images[from + p]! / 255;
      classes[b] = labels[index]!;
    }
    return tf.tidy(() => ({
      images: tf.tensor4d(pixels, [n, height, width, 1]),
      labels: tf.oneHot(tf.tensor1d(classes, 'int32'), NUM_CLASSES).toFloat() as tf.Tensor2D,
    }));
  }
}
