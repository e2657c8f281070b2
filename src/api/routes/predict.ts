import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { mnistImageToPng } from '../../ml/image-preprocess.js';
import { aliasNameSchema } from '../../registry/model-aliases.js';
import { DomainError, notFound } from '../../errors.js';
import { errorBodySchema } from '../error-handler.js';
import type { ImageDecoder } from '../image-decoder.js';
import { anyImageSchema, IMAGE_BODY_TYPES, IMAGE_SCALES, imageScaleSchema } from '../image-schema.js';
import { toModelInputs, type RawImage } from '../predict-inputs.js';

export const predictBodySchema = z
  .object({
    image: anyImageSchema
      .optional()
      .describe('784 numbers, 28 rows of 28, or a base64 PNG/JPEG (data URL too)'),
    images: z.array(anyImageSchema).min(1, 'images is empty: send at least one').optional(),
    scale: imageScaleSchema,
  })
  .strict()
  .refine((b) => (b.image === undefined) !== (b.images === undefined), {
    message: "send either 'image' (one) or 'images' (a batch), not both and not neither",
  });

const predictionSchema = z.object({
  label: z.int().min(0).describe("the class's index: the model's output with the highest probability"),
  class: z
    .string()
    .describe("the class's name in the model's data set: '7' for MNIST, 'Sneaker' for Fashion-MNIST"),
  confidence: z.number(),
  probabilities: z.array(z.number()).min(2).describe('one per class, in label order'),
  input: z
    .string()
    .optional()
    .describe('with ?include=input: the 28x28 image the model saw (after preprocessing), as a PNG data URL'),
});

const predictResponseSchema = z.object({ modelVersion: z.int(), predictions: z.array(predictionSchema) });
export type PredictResponse = z.infer<typeof predictResponseSchema>;

export interface PredictRouteOptions {
  /** Most images per request, numeric or encoded. */
  maxImages: number;
  /** Most PNG/JPEG images per request: each costs a decode, numeric ones almost nothing. */
  maxEncodedImages: number;
  bodyLimit: number;
  decoder: ImageDecoder;
}

export const predictRoutes: FastifyPluginAsyncZod<PredictRouteOptions> = async (app, options) => {
  // Raw image bytes as the body; registered in this plugin only, so no other route takes them.
  app.addContentTypeParser(
    IMAGE_BODY_TYPES,
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
      config: {
        accepts: ['application/json', ...IMAGE_BODY_TYPES],
        auth: 'predict',
        rateLimitBucket: 'predict',
      },
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
          404: errorBodySchema.describe('`not_found`: ?version names no version or alias'),
          413: errorBodySchema,
          415: errorBodySchema,
          503: errorBodySchema.describe(
            '`no_model`: no version is trained yet; `overloaded`: too many images waiting to be decoded (Retry-After)',
          ),
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
      if (raw.length > options.maxImages) {
        throw new DomainError(`images has ${raw.length} images; at most ${options.maxImages} per request`, {
          status: 400,
          code: 'batch_too_large',
        });
      }
      const encoded = raw.filter((img) => !Array.isArray(img)).length;
      if (encoded > options.maxEncodedImages) {
        throw new DomainError(
          `images has ${encoded} PNG/JPEG images; at most ${options.maxEncodedImages} per request ` +
            `(as numbers, up to ${options.maxImages})`,
          { status: 400, code: 'batch_too_large' },
        );
      }
      const pixels = await toModelInputs(
        raw,
        IMAGE_SCALES[scale],
        images ? 'images' : undefined,
        options.decoder,
      );
      const result = await app.predictor.predict(pixels, await resolveVersion(request.query.version));
      reply.header('server-timing', `predict;dur=${(performance.now() - started).toFixed(2)}`);
      if (request.query.include !== 'input') return result;
      // Shows what preprocessing made of a drawing or photo (the web page displays it).
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
