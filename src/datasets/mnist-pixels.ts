import sharp from 'sharp';
import { imageToMnist } from '../ml/image-preprocess.js';
import { IMAGE_PIXELS } from '../ml/image-shape.js';

/**
 * An encoded image (PNG, JPEG) as a stored 28x28 digit: the same MNIST-style preprocessing as
 * /predict gives an encoded image (ink found, boxed into 20x20, centred by mass), so a dataset
 * of photos or drawings is seen the way predictions will see it. Throws ImageInputError for what
 * is no usable image.
 */
export async function encodedToMnist(bytes: Uint8Array): Promise<Uint8Array> {
  return toBytes((await imageToMnist(bytes)).pixels);
}

/**
 * A grayscale image of another size than 28x28 (an idx file of 32x32 images) through the same
 * preprocessing, by way of a lossless PNG: it is an image like any other, just not an encoded one.
 */
export async function rawToMnist(pixels: Uint8Array, rows: number, cols: number): Promise<Uint8Array> {
  const png = await sharp(pixels, { raw: { width: cols, height: rows, channels: 1 } })
    .png({ compressionLevel: 1 })
    .toBuffer();
  return encodedToMnist(png);
}

/** [0, 1] floats as the 0..255 bytes the idx files store. */
function toBytes(pixels: Float32Array): Uint8Array {
  const bytes = new Uint8Array(IMAGE_PIXELS);
  for (let i = 0; i < IMAGE_PIXELS; i++) bytes[i] = Math.round(Math.min(1, Math.max(0, pixels[i]!)) * 255);
  return bytes;
}
