import sharp from 'sharp';
import { IMAGE_PIXELS, IMAGE_SIDE } from '../ml/image-shape.js';

/**
 * A column of `count` 28x28 digits (0..255, ink high, as MNIST stores them: nothing is resampled)
 * as one grayscale PNG, digit i at y = 28 * i. One file per model version instead of one per
 * digit: one fsync at publish time, and one request for a page that shows them all.
 */
export async function digitSpritePng(pixels: Uint8Array, count: number): Promise<Buffer> {
  if (!(Number.isInteger(count) && count > 0)) throw new RangeError(`count must be >= 1, got ${count}`);
  if (pixels.length !== count * IMAGE_PIXELS) {
    throw new RangeError(
      `expected ${count} digits of ${IMAGE_PIXELS} pixels = ${count * IMAGE_PIXELS} bytes, got ${pixels.length}`,
    );
  }
  return sharp(pixels, { raw: { width: IMAGE_SIDE, height: IMAGE_SIDE * count, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
}

/** Digit `index` of a sprite as its own 28x28 PNG; undefined when the sprite holds no such digit. */
export async function digitFromSprite(sprite: Uint8Array, index: number): Promise<Buffer | undefined> {
  const { width, height } = await sharp(sprite).metadata();
  const count = Math.floor(height / IMAGE_SIDE);
  if (width !== IMAGE_SIDE || !(Number.isInteger(index) && index >= 0 && index < count)) return undefined;
  return sharp(sprite)
    .extract({ left: 0, top: index * IMAGE_SIDE, width: IMAGE_SIDE, height: IMAGE_SIDE })
    .toColourspace('b-w')
    .png()
    .toBuffer();
}
