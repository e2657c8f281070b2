import sharp from 'sharp';

/** Side of one digit in the sprite, in pixels: MNIST's own size, so nothing is resampled. */
export const DIGIT_SIDE = 28;
const DIGIT_PIXELS = DIGIT_SIDE * DIGIT_SIDE;

/**
 * A column of `count` 28x28 digits (0..255, ink high, as MNIST stores them) as one grayscale PNG,
 * digit i at y = 28 * i. One file per model version instead of one per digit: one fsync at
 * publish time, and one request for a page that shows them all.
 */
export async function digitSpritePng(pixels: Uint8Array, count: number): Promise<Buffer> {
  if (!(Number.isInteger(count) && count > 0)) throw new RangeError(`count must be >= 1, got ${count}`);
  if (pixels.length !== count * DIGIT_PIXELS) {
    throw new RangeError(
      `expected ${count} digits of ${DIGIT_PIXELS} pixels = ${count * DIGIT_PIXELS} bytes, got ${pixels.length}`,
    );
  }
  return sharp(pixels, { raw: { width: DIGIT_SIDE, height: DIGIT_SIDE * count, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
}

/** Digit `index` of a sprite as its own 28x28 PNG; a RangeError when the sprite has no such digit. */
export async function digitFromSprite(sprite: Uint8Array, index: number): Promise<Buffer> {
  const { width, height } = await sharp(sprite).metadata();
  const count = Math.floor(height / DIGIT_SIDE);
  if (width !== DIGIT_SIDE || !(Number.isInteger(index) && index >= 0 && index < count)) {
    throw new RangeError(`the sprite holds digits 0..${count - 1} (${width}x${height}); asked for ${index}`);
  }
  return sharp(sprite)
    .extract({ left: 0, top: index * DIGIT_SIDE, width: DIGIT_SIDE, height: DIGIT_SIDE })
    .toColourspace('b-w')
    .png()
    .toBuffer();
}
