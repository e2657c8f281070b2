import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import sharp from 'sharp';
import { z } from 'zod';
import { invalidField } from '../../errors.js';
import type { MnistTestDigits } from '../../datasets/mnist-test-digits.js';
import { DIGIT_CLASSES } from '../../ml/data/dataset.js';
import { IMAGE_SIDE } from '../../ml/image-shape.js';
import { errorBodySchema } from '../error-handler.js';

/** Largest zoom: 280 x 280 px, the web page's drawing canvas. */
export const MAX_SAMPLE_ZOOM = 10;
/** Above the most test images any digit has (1,135 ones); the real bound is checked per digit. */
const MAX_INDEX = 9_999;
// MNIST's files never change, so neither does the answer for a URL.
const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * An integer from a path or query string, written in digits only: z.coerce alone reads '' as 0
 * (so /samples/.png would be a 0) and '1e0' or ' 7' as numbers too. Documented as an integer.
 */
function wholeNumber(min: number, max: number, message: string) {
  const digitsOnly = (value: unknown) => (typeof value === 'string' && !/^\d+$/.test(value) ? NaN : value);
  return z.preprocess(
    digitsOnly,
    z.coerce.number({ error: message }).int(message).min(min, message).max(max, message),
  );
}

const lastDigit = DIGIT_CLASSES.length - 1;
const digitParams = z.object({
  digit: wholeNumber(0, lastDigit, `must be a digit, 0 to ${lastDigit}`).describe('the digit, 0-9'),
});
const indexField = wholeNumber(0, MAX_INDEX, `must be a whole number, 0 to ${MAX_INDEX}`)
  .default(0)
  .describe("which of the digit's test images, in the file's order: 0 up to its count - 1 (at least 891)");

const pngQuery = z
  .object({
    index: indexField,
    zoom: wholeNumber(1, MAX_SAMPLE_ZOOM, `must be a whole number, 1 to ${MAX_SAMPLE_ZOOM}`)
      .default(1)
      .describe(
        `each pixel as a zoom x zoom block, 1-${MAX_SAMPLE_ZOOM}: 1 is the 28 x 28 image the model sees, ` +
          `${MAX_SAMPLE_ZOOM} is 280 x 280 to look at (/predict reads either)`,
      ),
  })
  .strict();
const jsonQuery = z.object({ index: indexField }).strict();

const predictBodyOfSample = z
  .object({
    image: z.array(z.array(z.int().min(0).max(255)).length(IMAGE_SIDE)).length(IMAGE_SIDE),
    scale: z.literal('byte'),
  })
  .describe('a POST /predict JSON body: 28 rows of 28 numbers, 0-255, ink high; send it as it is');

export interface SampleRouteOptions {
  digits: MnistTestDigits;
}

/**
 * Digits to try the service with (issue 18): MNIST test images, the kind the model is trained
 * on, as PNG for `POST /predict`'s image bodies or as its JSON body. Open, like every read.
 */
export const sampleRoutes: FastifyPluginAsyncZod<SampleRouteOptions> = async (app, { digits }) => {
  async function sample(digit: number, index: number): Promise<Uint8Array> {
    const image = await digits.image(digit, index);
    if (image) return image;
    const count = await digits.count(digit);
    throw invalidField(
      'querystring.index',
      `digit ${digit} has ${count} test images: index must be 0 to ${count - 1}, got ${index}`,
    );
  }

  app.get(
    '/samples/:digit.png',
    {
      schema: {
        tags: ['samples'],
        summary: "A handwritten digit from MNIST's test set, as a grayscale PNG, to try /predict with",
        description:
          'White ink on black, as MNIST stores it. `curl -o digit.png .../samples/7.png`, then POST it to ' +
          '/predict with `Content-Type: image/png`. The same URL always answers the same image.',
        params: digitParams,
        querystring: pngQuery,
        response: {
          200: {
            description: 'grayscale PNG, 28 zoom x 28 zoom',
            content: {
              'image/png': { schema: z.instanceof(Buffer).meta({ type: 'string', format: 'binary' }) },
            },
          },
          400: errorBodySchema,
        },
      },
    },
    async (request, reply) => {
      const { digit } = request.params;
      const { index, zoom } = request.query;
      const png = await samplePng(await sample(digit, index), zoom);
      return reply.type('image/png').header('cache-control', IMMUTABLE).send(png);
    },
  );

  app.get(
    '/samples/:digit.json',
    {
      schema: {
        tags: ['samples'],
        summary: 'The same digit as /samples/{digit}.png, as a JSON body for POST /predict',
        description:
          'For clients that send numbers rather than files: `{ "image": 28 rows of 28, "scale": "byte" }`.',
        params: digitParams,
        querystring: jsonQuery,
        response: { 200: predictBodyOfSample, 400: errorBodySchema },
      },
    },
    async (request, reply) => {
      const pixels = await sample(request.params.digit, request.query.index);
      const image = Array.from({ length: IMAGE_SIDE }, (_, row) =>
        Array.from(pixels.subarray(row * IMAGE_SIDE, (row + 1) * IMAGE_SIDE)),
      );
      return reply.header('cache-control', IMMUTABLE).send({ image, scale: 'byte' as const });
    },
  );
};

/** 28x28 bytes as a grayscale PNG, each pixel a zoom x zoom block: no smoothing, nothing invented. */
function samplePng(pixels: Uint8Array, zoom: number): Promise<Buffer> {
  const side = IMAGE_SIDE * zoom;
  return sharp(pixels, { raw: { width: IMAGE_SIDE, height: IMAGE_SIDE, channels: 1 } })
    .resize(side, side, { kernel: 'nearest' })
    .toColourspace('b-w')
    .png()
    .toBuffer();
}
