import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { PIXELS } from '../../ml/predict.js';
import { aliasNameSchema } from '../../registry/model-aliases.js';
import { errorBodySchema } from '../error-handler.js';
import { HttpError } from '../http-error.js';

const SIDE = 28;

/** 784 numbers, or 28 rows of 28: checked here so the message can say which and where. */
const imageSchema = z.array(z.union([z.number(), z.array(z.number())])).superRefine((image, ctx) => {
  const flat = image.every((v) => typeof v === 'number');
  const rows = image.every((v) => Array.isArray(v));
  if (flat && image.length !== PIXELS) {
    ctx.addIssue({
      code: 'custom',
      message: `an image is ${PIXELS} numbers or ${SIDE} rows of ${SIDE}; got ${image.length} numbers`,
    });
  } else if (rows && (image.length !== SIDE || image.some((r) => (r as number[]).length !== SIDE))) {
    const widths = [...new Set(image.map((r) => (r as number[]).length))].join('/');
    ctx.addIssue({
      code: 'custom',
      message: `an image is ${SIDE} rows of ${SIDE} numbers; got ${image.length} rows of ${widths}`,
    });
  } else if (!flat && !rows) {
    ctx.addIssue({ code: 'custom', message: 'an image is either all numbers or all rows, not a mix' });
  }
});

const scales = { unit: 1, byte: 255 } as const;

export const predictBodySchema = z
  .object({
    image: imageSchema.optional(),
    images: z.array(imageSchema).min(1, 'images is empty: send at least one').optional(),
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
});

export interface PredictRouteOptions {
  maxBatch: number;
  bodyLimit: number;
}

export const predictRoutes: FastifyPluginAsyncZod<PredictRouteOptions> = async (app, options) => {
  async function resolveVersion(version: number | string | undefined): Promise<number | undefined> {
    if (typeof version !== 'string') return version;
    const aliased = await app.aliases.get(version);
    if (aliased === null) throw new HttpError(404, 'not_found', `alias ${version} not found`);
    return aliased;
  }

  app.post(
    '/predict',
    {
      bodyLimit: options.bodyLimit,
      schema: {
        summary: 'Classify 28x28 grayscale digits with the latest (or a pinned) model version',
        querystring: z.object({
          version: z
            .union([z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER), aliasNameSchema])
            .optional()
            .describe('a version number or an alias such as production; default: the latest version'),
        }),
        body: predictBodySchema,
        response: {
          200: z.object({ modelVersion: z.int(), predictions: z.array(predictionSchema) }),
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
      const { image, images, scale } = request.body;
      const raw = images ?? [image!];
      if (raw.length > options.maxBatch) {
        throw new HttpError(
          400,
          'batch_too_large',
          `images has ${raw.length} images; at most ${options.maxBatch} per request`,
        );
      }
      const pixels = raw.map((img, i) => toPixels(img, scales[scale], images ? `images[${i}]` : 'image'));
      const result = await app.predictor.predict(pixels, await resolveVersion(request.query.version));
      reply.header('server-timing', `predict;dur=${(performance.now() - started).toFixed(2)}`);
      return result;
    },
  );
};

function toPixels(image: (number | number[])[], max: number, name: string): Float32Array {
  const values = (image as unknown[]).flat() as number[];
  const out = new Float32Array(PIXELS);
  for (let i = 0; i < PIXELS; i++) {
    const v = values[i]!;
    if (!(v >= 0 && v <= max)) {
      const where = `${name}[${Math.floor(i / SIDE)}][${i % SIDE}]`;
      throw new HttpError(
        400,
        'out_of_range',
        `${where} is ${v}, outside 0..${max} for scale '${max === 1 ? 'unit' : 'byte'}'`,
      );
    }
    out[i] = v / max;
  }
  return out;
}
