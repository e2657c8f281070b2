import { DomainError } from '../errors.js';
import { ImageInputError } from '../ml/image-preprocess.js';
import { IMAGE_PIXELS, IMAGE_SIDE } from '../ml/image-shape.js';
import type { ImageDecoder } from './image-decoder.js';
import type { NumericImage } from './image-schema.js';

/** One image of a /predict request: numbers, a base64 file, or the raw body's bytes. */
export type RawImage = string | Buffer | NumericImage;

/**
 * The model input of every image, in order. Numbers first, since checking them is cheap; then the
 * files one at a time, so a bad one stops the rest before they are decoded and one request never
 * holds more than one decode slot. `max` is the scale's top value (1 or 255); `batchName` names
 * the images in messages (`images[2]`), or they are called `image`.
 */
export async function toModelInputs(
  raw: RawImage[],
  max: number,
  batchName: string | undefined,
  decoder: ImageDecoder,
): Promise<Float32Array[]> {
  const name = (i: number) => (batchName ? `${batchName}[${i}]` : 'image');
  const pixels: Float32Array[] = [];
  raw.forEach((image, i) => {
    if (Array.isArray(image)) pixels[i] = toPixels(image, max, name(i));
  });
  for (let i = 0; i < raw.length; i++) {
    const image = raw[i]!;
    if (Array.isArray(image)) continue;
    const bytes =
      typeof image === 'string' ? Buffer.from(image.replace(/^data:[^,]*;base64,/, ''), 'base64') : image;
    try {
      pixels[i] = (await decoder.decode(bytes)).pixels;
    } catch (error) {
      // Which image of the request it was, which only the caller knows.
      if (!(error instanceof ImageInputError)) throw error;
      throw new DomainError(`${name(i)}: ${error.message}`, {
        status: 400,
        code: 'invalid_image',
        cause: error,
      });
    }
  }
  return pixels;
}

function toPixels(image: NumericImage, max: number, name: string): Float32Array {
  const out = new Float32Array(IMAGE_PIXELS);
  // The schema has checked the shape: 784 numbers, or 28 rows of 28. No intermediate arrays here:
  // this runs for every image of every request.
  const rows = Array.isArray(image[0]);
  for (let i = 0; i < IMAGE_PIXELS; i++) {
    const v = rows ? (image[(i / IMAGE_SIDE) | 0] as number[])[i % IMAGE_SIDE]! : (image[i] as number);
    if (!(v >= 0 && v <= max)) {
      const where = `${name}[${Math.floor(i / IMAGE_SIDE)}][${i % IMAGE_SIDE}]`;
      throw new DomainError(
        `${where} is ${v}, outside 0..${max} for scale '${max === 1 ? 'unit' : 'byte'}'`,
        {
          status: 400,
          code: 'out_of_range',
        },
      );
    }
    out[i] = v / max;
  }
  return out;
}
