import { z } from 'zod';
import { IMAGE_PIXELS, IMAGE_SIDE } from '../ml/image-shape.js';

/** An image as JSON numbers: 784 of them, or 28 rows of 28. */
export type NumericImage = (number | number[])[];

const numbersSchema = (count: number) => ({
  type: 'array',
  items: { type: 'number' },
  minItems: count,
  maxItems: count,
});

/**
 * A numeric image, checked in one loop with messages that say which value and where. Not
 * z.array(z.union(...)): zod then builds a result object per pixel, garbage that /predict would
 * pay on every request. The JSON Schema for the docs is given by hand, since a custom check has none.
 */
export const numericImageSchema = z
  .custom<NumericImage>((value) => Array.isArray(value), { message: 'an image is an array of numbers' })
  .superRefine((image, ctx) => {
    const problem = imageProblem(image);
    if (problem) ctx.addIssue({ code: 'custom', message: problem.message, path: problem.path });
  })
  .meta({
    oneOf: [numbersSchema(IMAGE_PIXELS), { ...numbersSchema(IMAGE_SIDE), items: numbersSchema(IMAGE_SIDE) }],
  } as Record<string, unknown>);

/** A PNG or JPEG file as base64, bare or as a data URL (what canvas.toDataURL gives). */
export const encodedImageSchema = z.string().min(1, 'an encoded image is empty').max(12_000_000);

function imageProblem(image: unknown[]): { message: string; path: (string | number)[] } | null {
  const rows = Array.isArray(image[0]);
  if (!rows) {
    for (let i = 0; i < image.length; i++) {
      if (typeof image[i] === 'number') continue;
      return Array.isArray(image[i])
        ? { message: 'an image is either all numbers or all rows, not a mix', path: [] }
        : { message: `must be a number, got ${describe(image[i])}`, path: [i] };
    }
    if (image.length !== IMAGE_PIXELS)
      return {
        message: `an image is ${IMAGE_PIXELS} numbers or ${IMAGE_SIDE} rows of ${IMAGE_SIDE}; got ${image.length} numbers`,
        path: [],
      };
    return null;
  }
  for (let r = 0; r < image.length; r++) {
    const row = image[r];
    if (!Array.isArray(row))
      return { message: 'an image is either all numbers or all rows, not a mix', path: [] };
    for (let c = 0; c < row.length; c++)
      if (typeof row[c] !== 'number')
        return { message: `must be a number, got ${describe(row[c])}`, path: [r, c] };
  }
  if (image.length !== IMAGE_SIDE || image.some((r) => (r as unknown[]).length !== IMAGE_SIDE)) {
    const widths = [...new Set(image.map((r) => (r as unknown[]).length))].join('/');
    return {
      message: `an image is ${IMAGE_SIDE} rows of ${IMAGE_SIDE} numbers; got ${image.length} rows of ${widths}`,
      path: [],
    };
  }
  return null;
}

const describe = (value: unknown) =>
  value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;

/**
 * One image in any form /predict and /feedback take: numbers, a base64 file, or (raw image/png or
 * image/jpeg bodies, handed over as a Buffer by the routes' content-type parsers) its bytes.
 */
export const anyImageSchema = z.union([encodedImageSchema, numericImageSchema, z.instanceof(Buffer)]);

/** The content types a raw image body may have. */
export const IMAGE_BODY_TYPES = ['image/png', 'image/jpeg'];

/** The top value of each scale numeric images come in. */
export const IMAGE_SCALES = { unit: 1, byte: 255 } as const;
export type ImageScale = keyof typeof IMAGE_SCALES;

export const imageScaleSchema = z
  .enum(['unit', 'byte'])
  .default('unit')
  .describe("'unit': floats 0..1 as MNIST after normalization (default); 'byte': 0..255");
