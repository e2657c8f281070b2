import sharp from 'sharp';
import { IMAGE_PIXELS, IMAGE_SIDE } from '../ml/image-shape.js';
import type { LabelledImages } from './labelled-images.js';

/** Examples shown per class. */
export const SAMPLES_PER_CLASS = 10;

/**
 * A grid of examples, one row per class in label order and up to SAMPLES_PER_CLASS of its
 * images side by side (the first ones in `set`), 28x28 each with ink high, as a grayscale PNG
 * of 280 x 28K pixels. A class with fewer images leaves black cells.
 */
export async function samplesGridPng(set: LabelledImages, classCount: number): Promise<Buffer> {
  const width = SAMPLES_PER_CLASS * IMAGE_SIDE;
  const grid = new Uint8Array(width * IMAGE_SIDE * classCount);
  const shown = new Array<number>(classCount).fill(0);
  let remaining = classCount * SAMPLES_PER_CLASS;
  for (let i = 0; i < set.count && remaining > 0; i++) {
    const label = set.labels[i]!;
    const column = shown[label]!;
    if (label >= classCount || column >= SAMPLES_PER_CLASS) continue;
    shown[label] = column + 1;
    remaining--;
    const image = set.pixels.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS);
    for (let y = 0; y < IMAGE_SIDE; y++) {
      const row = (label * IMAGE_SIDE + y) * width + column * IMAGE_SIDE;
      grid.set(image.subarray(y * IMAGE_SIDE, (y + 1) * IMAGE_SIDE), row);
    }
  }
  return sharp(grid, { raw: { width, height: IMAGE_SIDE * classCount, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
}
