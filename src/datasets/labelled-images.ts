import { IMAGE_PIXELS } from '../ml/image-shape.js';

/** 28x28 images, ink high as MNIST stores them, with one label each. */
export interface LabelledImages {
  count: number;
  /** count * 784 bytes, row-major. */
  pixels: Uint8Array;
  /** count bytes. */
  labels: Uint8Array;
}

/** Images gathered one at a time when their number is not known ahead (CSV rows). */
export class ImageCollector {
  private pixels: Uint8Array = new Uint8Array(1024 * IMAGE_PIXELS);
  private labels: Uint8Array = new Uint8Array(1024);
  private size = 0;

  get count(): number {
    return this.size;
  }

  push(pixels: Uint8Array, label: number): void {
    if (this.size === this.labels.length) {
      this.pixels = grown(this.pixels, this.pixels.length * 2);
      this.labels = grown(this.labels, this.labels.length * 2);
    }
    this.pixels.set(pixels, this.size * IMAGE_PIXELS);
    this.labels[this.size++] = label;
  }

  finish(): LabelledImages {
    return {
      count: this.size,
      pixels: this.pixels.slice(0, this.size * IMAGE_PIXELS),
      labels: this.labels.slice(0, this.size),
    };
  }
}

function grown(array: Uint8Array, length: number): Uint8Array {
  const bigger = new Uint8Array(length);
  bigger.set(array);
  return bigger;
}

/** The images at `indices`, in that order, copied. */
export function gather(set: LabelledImages, indices: ArrayLike<number>): LabelledImages {
  const pixels = new Uint8Array(indices.length * IMAGE_PIXELS);
  const labels = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const from = indices[i]!;
    pixels.set(set.pixels.subarray(from * IMAGE_PIXELS, (from + 1) * IMAGE_PIXELS), i * IMAGE_PIXELS);
    labels[i] = set.labels[from]!;
  }
  return { count: indices.length, pixels, labels };
}

/** Images per label, for labels 0..classCount-1. */
export function countPerClass(labels: Uint8Array, classCount: number): number[] {
  const counts = new Array<number>(classCount).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]!++;
  return counts;
}
