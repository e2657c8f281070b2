import * as tf from '@tensorflow/tfjs';
import type { ImageSet } from './data/dataset.js';

export interface Batch {
  /** [n, height, width, 1], pixels scaled to [0, 1] as in the seed. */
  images: tf.Tensor4D;
  /** [n, classes] one-hot. */
  labels: tf.Tensor2D;
}

/**
 * Builds the tensors of one batch straight from the Uint8 images, picking `indices[start..end)`.
 * The caller owns (and disposes) the tensors. Reusing one scratch buffer per size keeps a
 * 50,000-image epoch from allocating 782 fresh Float32Arrays. `numClasses` is the width of the
 * one-hot labels: the model's outputs.
 */
export class BatchMaker {
  private pixels = new Float32Array(0);
  private classes = new Int32Array(0);

  constructor(
    private readonly set: ImageSet,
    private readonly numClasses: number,
  ) {}

  /**
   * `shifts`, when given, moves the image at `indices[i]` by `shifts[2i]` rows and `shifts[2i+1]`
   * columns, filling with background: cheap augmentation that MNIST nets gain from.
   */
  make(indices: ArrayLike<number>, start: number, end: number, shifts?: Int8Array): Batch {
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
      if (shifts) {
        const at = 2 * (start + b);
        shiftInto(images, from, pixels, to, height, width, shifts[at]!, shifts[at + 1]!);
      } else {
        for (let p = 0; p < size; p++) pixels[to + p] = images[from + p]! / 255;
      }
      classes[b] = labels[index]!;
    }
    return tf.tidy(() => ({
      images: tf.tensor4d(pixels, [n, height, width, 1]),
      labels: tf.oneHot(tf.tensor1d(classes, 'int32'), this.numClasses).toFloat() as tf.Tensor2D,
    }));
  }
}

/**
 * Random whole-pixel shifts for `count` images, up to `maxShift` each way: (rows, columns) for
 * image 0, then image 1, ... Drawn up front for a whole epoch, so every data-parallel replica
 * sees the same shifts whatever slice of a batch it makes.
 */
export function drawShifts(count: number, random: () => number, maxShift: number): Int8Array {
  const shifts = new Int8Array(2 * count);
  const span = 2 * maxShift + 1;
  for (let i = 0; i < shifts.length; i++) shifts[i] = Math.floor(random() * span) - maxShift;
  return shifts;
}

function shiftInto(
  src: Uint8Array,
  from: number,
  dst: Float32Array,
  to: number,
  height: number,
  width: number,
  dy: number,
  dx: number,
): void {
  dst.fill(0, to, to + height * width);
  const x0 = Math.max(0, dx);
  const x1 = Math.min(width, width + dx);
  for (let y = Math.max(0, dy); y < Math.min(height, height + dy); y++) {
    const srcRow = from + (y - dy) * width - dx;
    const dstRow = to + y * width;
    for (let x = x0; x < x1; x++) dst[dstRow + x] = src[srcRow + x]! / 255;
  }
}
