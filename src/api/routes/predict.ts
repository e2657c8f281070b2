import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ImageInputError, mnistImageToPng } from '../../ml/image-preprocess.js';
import { PIXELS } from '../../ml/predict.js';
import { aliasNameSchema } from '../../registry/model-aliases.js';
import { DomainError, notFound } from '../../errors.js';
import { errorBodySchema } from '../error-handler.js';
import type { ImageDecoder } from '../image-decoder.js';

const SIDE = 28;

type NumericImage = (number | number[])[];

const numbersSchema = (count: number) => ({
  type: 'array',
  items: { type: 'number' },
  minItems: count,
  maxItems: count,
});

/**
 * 784 numbers, or 28 rows of 28, checked in one loop with messages that say which and where.
 * Not z.array(z.union(...)): zod then builds a result object per pixel, about 120 KB of garbage
 * per image, which /predict pays on every request (young-generation GC was its latency tail).
 * The JSON Schema for the docs is given by hand, since a custom check has none.
 */
const imageSchema = z
  .custom<NumericImage>((value) => Array.isArray(value), { message: 'an image is an array of numbers' })
  .superRefine((image, ctx) => {
    const problem = imageProblem(image);
    if (problem) ctx.addIssue({ code: 'custom', message: problem.message, path: problem.path });
  })
  .meta({
    oneOf: [numbersSchema(PIXELS), { ...numbersSchema(SIDE), items: numbersSchema(SIDE) }],
  } as Record<string, unknown>);

function imageProblem(image: unknown[]): { message: string; path: (string | number)[] } | null {
  const rows = Array.isArray(image[0]);
  if (!rows) {
    for (let i = 0; i < image.length; i++) {
      if (typeof image[i] === 'number') continue;
      return Array.isArray(image[i])
        ? { message: 'an image is either all numbers or all rows, not a mix', path: [] }
        : { message: `must be a number, got ${describe(image[i])}`, path: [i] };
    }
    if (image.length !== PIXELS)
      return {
        message: `an image is ${PIXELS} numbers or ${SIDE} rows of ${SIDE}; got ${image.length} numbers`,
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
  if (image.length !== SIDE || image.some((r) => (r as unknown[]).length !== SIDE)) {
    const widths = [...new Set(image.map((r) => (r as unknown[]).length))].join('/');
    return {
      message: `an image is ${SIDE} rows of ${SIDE} numbers; got ${image.length} rows of ${widths}`,
      path: [],
    };
  }
  return null;
}

const describe = (value: unknown) =>
  value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;

/** A PNG or JPEG file as base64, bare or as a data URL (what canvas.toDataURL gives). */
const encodedImageSchema = z.string().min(1, 'an encoded image is empty').max(12_000_000);

// Raw image bodies arrive as a Buffer in `image` (see the content-type parser below).
const anyImageSchema = z.union([encodedImageSchema, imageSchema, z.instanceof(Buffer)]);

const scales = { unit: 1, byte: 255 } as const;

export const predictBodySchema = z
  .object({
    image: anyImageSchema
      .optional()
      .describe('784 numbers, 28 rows of 28, or a base64 PNG/JPEG (data URL too)'),
    images: z.array(anyImageSchema).min(1, 'images is empty: send at least one').optional(),
    scale: z
      .enum(['unit', 'byte'])
      .default('unit')
      .describe("'unit': floats 0..1 as MNIST after normalization (default); 'byte': 0..255"),
  })
  .strict()
  .refine((b) => (b.image === undefined) !== (b.images === undefined), {
    message: "send either 'image' (one) or 'images' (a batch), not both and not neither",
  });

const predictionSchema = z.object({
  label: z.int(),
  confidence: z.number(),
  probabilities: z.array(z.number()).length(10),
  input: z
    .string()
    .optional()
    .describe('with ?include=input: the 28x28 image the model saw (after preprocessing), as a PNG data URL'),
});

const predictResponseSchema = z.object({ modelVersion: z.int(), predictions: z.array(predictionSchema) });
export type PredictResponse = z.infer<typeof predictResponseSchema>;

export interface PredictRouteOptions {
  maxBatch: number;
  /** Most PNG/JPEG images per request: each costs a decode, numeric ones almost nothing. */
  maxEncodedImages: number;
  bodyLimit: number;
  decoder: ImageDecoder;
}

const IMAGE_TYPES = ['image/png', 'image/jpeg'];

export const predictRoutes: FastifyPluginAsyncZod<PredictRouteOptions> = async (app, options) => {
  // Raw image bytes as the body; registered in this plugin only, so no other route takes them.
  app.addContentTypeParser(
    IMAGE_TYPES,
    { parseAs: 'buffer', bodyLimit: options.bodyLimit },
    (_req, body, done) => done(null, { image: body }),
  );

  async function resolveVersion(version: number | string | undefined): Promise<number | undefined> {
    if (typeof version !== 'string') return version;
    const aliased = await app.aliases.get(version);
    if (aliased === null) throw notFound(`alias ${version}`);
    return aliased;
  }

  app.post(
    '/predict',
    {
      bodyLimit: options.bodyLimit,
      config: { accepts: ['application/json', ...IMAGE_TYPES], auth: 'predict', rateLimitBucket: 'predict' },
      schema: {
        summary: 'Classify 28x28 grayscale digits with the latest (or a pinned) model version',
        querystring: z.object({
          version: z
            .union([z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER), aliasNameSchema])
            .optional()
            .describe('a version number or an alias such as production; default: the latest version'),
          include: z
            .literal('input')
            .optional()
            .describe("'input': also return each image as the model saw it (28x28 PNG data URL)"),
        }),
        body: predictBodySchema,
        response: {
          200: predictResponseSchema,
          400: errorBodySchema,
          404: errorBodySchema,
          413: errorBodySchema,
          415: errorBodySchema,
          503: errorBodySchema,
        },
      },
    },
    async (request, reply) => {
      const started = performance.now();
      const body = Buffer.isBuffer(request.body)
        ? { image: request.body, scale: 'unit' as const }
        : request.body;
      const { image, images, scale } = body as {
        image?: RawImage;
        images?: RawImage[];
        scale: 'unit' | 'byte';
      };
      const raw = images ?? [image!];
      if (raw.length > options.maxBatch) {
        throw new DomainError(`images has ${raw.length} images; at most ${options.maxBatch} per request`, {
          status: 400,
          code: 'batch_too_large',
        });
      }
      const encoded = raw.filter((img) => !Array.isArray(img)).length;
      if (encoded > options.maxEncodedImages) {
        throw new DomainError(
          `images has ${encoded} PNG/JPEG images; at most ${options.maxEncodedImages} per request ` +
            `(as numbers, up to ${options.maxBatch})`,
          { status: 400, code: 'batch_too_large' },
        );
      }
      const pixels = await toModelInputs(raw, scales[scale], images ? 'images' : undefined, options.decoder);
      const result = await app.predictor.predict(pixels, await resolveVersion(request.query.version));
      reply.header('server-timing', `predict;dur=${(performance.now() - started).toFixed(2)}`);
      if (request.query.include !== 'input') return result;
      // Shows what preprocessing made of a drawing or photo (the web page displays it, issue 6).
      const inputs = await Promise.all(pixels.map((p) => mnistImageToPng(p)));
      return {
        ...result,
        predictions: result.predictions.map((prediction, i) => ({
          ...prediction,
          input: `data:image/png;base64,${inputs[i]!.toString('base64')}`,
        })),
      };
    },
  );
};

type RawImage = string | Buffer | (number | number[])[];

/**
 * The model input of every image, in order. Numbers
 * first, since checking them is cheap; then the files one at a time, so a bad one stops the rest
 * before they are decoded and one request never holds more than one decode slot.
 */
async function toModelInputs(
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

function toPixels(image: (number | number[])[], max: number, name: string): Float32Array {
  const out = new Float32Array(PIXELS);
  // The schema has checked the shape: 784 numbers, or 28 rows of 28. No intermediate arrays here:
  // this runs for every image of every request.
  const rows = Array.isArray(image[0]);
  for (let i = 0; i < PIXELS; i++) {
    const v = rows ? (image[(i / SIDE) | 0] as number[])[i % SIDE]! : (image[i] as number);
    if (!(v >= 0 && v <= max)) {
      const where = `${name}[${Math.floor(i / SIDE)}][${i % SIDE}]`;
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
