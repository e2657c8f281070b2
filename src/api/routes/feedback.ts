import type { FastifyBaseLogger } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DomainError, invalidField, notFound } from '../../errors.js';
import type { FeedbackEvaluations } from '../../feedback/feedback-evaluations.js';
import {
  feedbackCreatedSchema,
  feedbackExamplesPageSchema,
  feedbackId,
  feedbackIdSchema,
  feedbackSplit,
  feedbackSummarySchema,
  type FeedbackExample,
} from '../../feedback/feedback-schema.js';
import type { FeedbackStore } from '../../feedback/feedback-store.js';
import { DIGIT_CLASSES } from '../../ml/data/dataset.js';
import type { ModelStore } from '../../registry/model-store.js';
import { errorBodySchema } from '../error-handler.js';
import { resolveClass, type CheckedClasses } from '../feedback-classes.js';
import { exampleView, feedbackSamplesPng, feedbackSummary } from '../feedback-views.js';
import type { ImageDecoder } from '../image-decoder.js';
import { anyImageSchema, IMAGE_BODY_TYPES, IMAGE_SCALES, imageScaleSchema } from '../image-schema.js';
import { toModelInputs, type RawImage } from '../predict-inputs.js';
import type { Predictor } from '../predictor.js';

/** How long a POST waits for Redis to take the new revision before answering anyway (an outage). */
const REVISION_WAIT_MS = 1000;

const classRefSchema = z.union([z.int(), z.string().min(1).max(64)], {
  error: 'must be a class index (an integer) or a class name',
});
const versionSchema = z.int().min(1).max(Number.MAX_SAFE_INTEGER);

const bodySchema = z
  .object({
    image: anyImageSchema.describe('784 numbers, 28 rows of 28, or a base64 PNG/JPEG (data URL too)'),
    scale: imageScaleSchema,
    label: classRefSchema
      .optional()
      .describe("the right class: its index or its name ('7', 'Sneaker'); required with a JSON body"),
    modelVersion: versionSchema.optional().describe('the model version whose answer this corrects'),
    predicted: classRefSchema.optional().describe('the class that version predicted: index or name'),
  })
  .strict()
  .superRefine((body, ctx) => {
    // A raw image body (a Buffer here) carries its label in the querystring instead.
    if (!Buffer.isBuffer(body.image) && body.label === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['label'],
        message: 'label is missing: send the right class, as its index or its name',
      });
  });

const querySchema = z
  .object({
    label: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe('with an image/png or image/jpeg body: the right class'),
    modelVersion: z.coerce
      .number()
      .int()
      .min(1)
      .max(Number.MAX_SAFE_INTEGER)
      .optional()
      .describe('with an image body: the model version whose answer this corrects'),
    predicted: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe('with an image body: the class that version predicted'),
  })
  .strict();

const pageQuerySchema = z
  .object({
    offset: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
    limit: z.coerce.number().int().min(1).max(200).default(50),
  })
  .strict();

const idParams = z.object({ id: feedbackIdSchema });

const pngResponse = (description: string) => ({
  description,
  content: { 'image/png': { schema: z.instanceof(Buffer).meta({ type: 'string', format: 'binary' }) } },
});

export interface FeedbackRouteOptions {
  store: FeedbackStore;
  evaluations: FeedbackEvaluations;
  /** The versions labels are checked against; without them (no serving), the digits 0-9. */
  models?: { store: ModelStore; predictor: Predictor };
  /** FEEDBACK_MAX_EXAMPLES */
  maxExamples: number;
  /** The same as /predict's: the same images fit. */
  bodyLimit: number;
  decoder: ImageDecoder;
}

/** What one POST /feedback asks to store, whichever way it came. */
interface Correction {
  image: RawImage;
  scale: keyof typeof IMAGE_SCALES;
  label: number | string;
  modelVersion: number | undefined;
  predicted: number | string | undefined;
  /** Where the labels came from, for messages: 'body' or 'querystring'. */
  from: 'body' | 'querystring';
}

/**
 * The feedback loop's HTTP side (issue 17): corrections in, what is stored and how each version
 * does on it out. Stored examples are the 28x28 images the model sees, as bytes; the figures per
 * version come from the background evaluation, never from work on a request's path.
 */
export const feedbackRoutes: FastifyPluginAsyncZod<FeedbackRouteOptions> = async (app, options) => {
  const { store, evaluations, models } = options;

  // Raw image bytes as the body; this plugin's own, like /predict's.
  app.addContentTypeParser(
    IMAGE_BODY_TYPES,
    { parseAs: 'buffer', bodyLimit: options.bodyLimit },
    (_req, body, done) => done(null, { image: body }),
  );

  /** The classes of what the client saw: its version, else the served one, else the digits. */
  async function classesFor(modelVersion: number | undefined, field: string): Promise<CheckedClasses> {
    if (modelVersion !== undefined) {
      const metadata = await models?.store.get(modelVersion);
      if (!metadata)
        throw invalidField(
          field,
          `modelVersion ${modelVersion} does not exist (deleted, or never published): send the version ` +
            'the prediction came from, or leave modelVersion out to check the label against the latest',
        );
      return { classes: metadata.classes, source: `model version ${modelVersion}` };
    }
    const served = models?.predictor;
    if (served?.version != null && served.classes)
      return { classes: served.classes, source: `model version ${served.version} (the latest)` };
    return { classes: DIGIT_CLASSES, source: 'the digits (no model version yet)' };
  }

  /** The class order views follow: the served version's, else the digits'. */
  const referenceClasses = () => models?.predictor.classes ?? DIGIT_CLASSES;

  /**
   * The stored examples, oldest first, read again only when the revision moved: a listing reads
   * every example (thousands of objects on S3), the revision is one Redis read. Keyed by the
   * revision read before listing, so a listing that raced a change is replaced at the next look.
   */
  let listing: { revision: number; examples: Promise<FeedbackExample[]> } | undefined;
  async function storedExamples(): Promise<{ revision: number; examples: FeedbackExample[] }> {
    const revision = await evaluations.revision();
    if (listing?.revision !== revision) {
      const examples = store.list();
      listing = { revision, examples };
      examples.catch(() => {
        if (listing?.examples === examples) listing = undefined;
      });
    }
    return { revision, examples: await listing.examples };
  }

  /** Bumps the revision (so views and evaluation see the change), without failing the answer. */
  async function changed(log: FastifyBaseLogger): Promise<void> {
    const bumped = evaluations.feedbackChanged().then(
      () => true,
      (err: unknown) => {
        log.warn({ err }, 'could not record the feedback change; evaluation catches up on the next one');
        return true;
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<false>(
      (resolve) => (timer = setTimeout(() => resolve(false), REVISION_WAIT_MS)),
    );
    if (!(await Promise.race([bumped, waited])))
      log.warn('Redis is slow to take the feedback change; answering without waiting for it');
    clearTimeout(timer);
  }

  function answerStored(stored: FeedbackExample, wanted: string, label: number, created: boolean) {
    if (stored.class !== wanted)
      throw new DomainError(
        `this image is stored already as class ${JSON.stringify(stored.class)} (feedback ${stored.id}), ` +
          `not ${JSON.stringify(wanted)}: to relabel it, DELETE /feedback/${stored.id} first`,
        {
          status: 409,
          code: 'feedback_conflict',
          details: { id: stored.id, storedClass: stored.class, sentClass: wanted },
        },
      );
    return { id: stored.id, class: stored.class, label, created, split: feedbackSplit(stored.id) };
  }

  app.post(
    '/feedback',
    {
      bodyLimit: options.bodyLimit,
      config: {
        accepts: ['application/json', ...IMAGE_BODY_TYPES],
        auth: 'feedback',
        rateLimitBucket: 'feedback',
      },
      schema: {
        summary: 'Send a correction: an image and its right class (and the version and answer it corrects)',
        description:
          'The image in any form /predict takes, as JSON (`image`, `scale`, `label`, `modelVersion`, ' +
          '`predicted`) or as a raw image/png or image/jpeg body with `label`, `modelVersion` and ' +
          '`predicted` in the querystring. The label is checked against the classes of ' +
          '`modelVersion`, else of the latest version, else the digits 0-9. The 28x28 image the ' +
          'model sees is stored, once: the same image again is a 200 (`created: false`), or a 409 ' +
          'when it came with another class.',
        querystring: querySchema,
        body: bodySchema,
        response: {
          200: feedbackCreatedSchema.describe('stored before, with the same class'),
          201: feedbackCreatedSchema.describe('stored'),
          400: errorBodySchema,
          409: errorBodySchema.describe(
            'feedback_conflict: stored before with another class; feedback_full: FEEDBACK_MAX_EXAMPLES reached',
          ),
          413: errorBodySchema,
          415: errorBodySchema,
          503: errorBodySchema.describe('`overloaded`: too many images waiting to be decoded (Retry-After)'),
        },
      },
    },
    async (request, reply) => {
      const correction = correctionOf(request.body, request.query);
      const { from } = correction;
      const field = (name: string) => `${from}.${name}`;
      const checked = await classesFor(correction.modelVersion, field('modelVersion'));
      const fromQuery = from === 'querystring';
      const { label, class: className } = resolveClass(correction.label, checked, field('label'), fromQuery);
      const predicted =
        correction.predicted === undefined
          ? null
          : resolveClass(correction.predicted, checked, field('predicted'), fromQuery).class;
      const [input] = await toModelInputs(
        [correction.image],
        IMAGE_SCALES[correction.scale],
        undefined,
        options.decoder,
      );
      const pixels = Uint8Array.from(input!, (v) => Math.round(v * 255));
      const id = feedbackId(pixels);

      const before = await store.get(id);
      if (before) return reply.status(200).send(answerStored(before, className, label, false));
      // Checked before adding, so concurrent posts near the bound may pass it by a few: a bound on
      // the store's size, not an exact count.
      const count = await store.count();
      if (count >= options.maxExamples)
        throw new DomainError(
          `the feedback store is full: it holds ${count} examples, FEEDBACK_MAX_EXAMPLES is ` +
            `${options.maxExamples}; delete some (DELETE /feedback/:id) to make room`,
          { status: 409, code: 'feedback_full' },
        );
      const { created, stored } = await store.add({
        id,
        class: className,
        modelVersion: correction.modelVersion ?? null,
        predicted,
        createdAt: new Date().toISOString(),
        pixels: Buffer.from(pixels).toString('base64'),
      });
      // Another request stored the same image meanwhile: answered as if it had come first.
      if (!created) return reply.status(200).send(answerStored(stored, className, label, false));
      request.log.info(
        { feedbackId: id, class: className, modelVersion: correction.modelVersion, predicted },
        'feedback stored',
      );
      await changed(request.log);
      return reply.status(201).send(answerStored(stored, className, label, true));
    },
  );

  app.get(
    '/feedback',
    {
      schema: {
        summary: 'The feedback: examples per class and per day, and how each model version does on it',
        description:
          '`versions` are measured in the background when a version appears or the feedback changes; ' +
          '`pending` is true while some figure is older than `revision`.',
        response: { 200: feedbackSummarySchema },
      },
    },
    async () => {
      const { revision, examples } = await storedExamples();
      const versions = await evaluations.all();
      return feedbackSummary(examples, referenceClasses(), {
        revision,
        versions,
        maxExamples: options.maxExamples,
      });
    },
  );

  app.get(
    '/feedback/examples',
    {
      schema: {
        summary: 'The feedback examples, newest first, each image as a PNG data URL',
        querystring: pageQuerySchema,
        response: { 200: feedbackExamplesPageSchema, 400: errorBodySchema },
      },
    },
    async (request) => {
      const { offset, limit } = request.query;
      const { examples } = await storedExamples();
      const newestFirst = examples
        .slice()
        .reverse()
        .slice(offset, offset + limit);
      return {
        total: examples.length,
        offset,
        limit,
        examples: await Promise.all(newestFirst.map((e) => exampleView(e))),
      };
    },
  );

  app.get(
    '/feedback/samples.png',
    {
      schema: {
        summary: 'The newest feedback examples of each class as one PNG: a row per class, 28 px per image',
        response: {
          200: pngResponse('grayscale PNG, up to 10 examples per class, newest first'),
          404: errorBodySchema.describe('no feedback yet'),
        },
      },
    },
    async (_request, reply) => {
      const { examples } = await storedExamples();
      if (examples.length === 0) throw notFound('feedback (none is stored yet)');
      const png = await feedbackSamplesPng(examples, referenceClasses());
      // It changes with every example: a browser asks again each time, and gets it from us.
      return reply.type('image/png').header('cache-control', 'no-cache').send(png);
    },
  );

  app.delete(
    '/feedback/:id',
    {
      config: { auth: 'admin' },
      schema: {
        summary: 'Delete a feedback example (a wrong one, or one to send again with another class)',
        params: idParams,
        response: { 204: z.null().describe('deleted'), 400: errorBodySchema, 404: errorBodySchema },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (!(await store.remove(id))) throw notFound(`feedback ${id}`);
      request.log.info({ feedbackId: id }, 'feedback deleted');
      await changed(request.log);
      return reply.status(204).send(null);
    },
  );
};

/** The correction in a POST, from the JSON body or from a raw image body and the querystring. */
function correctionOf(body: z.infer<typeof bodySchema>, query: z.infer<typeof querySchema>): Correction {
  const queried = Object.keys(query);
  if (Buffer.isBuffer(body.image)) {
    if (query.label === undefined)
      throw invalidField(
        'querystring.label',
        'label is missing: with an image/png or image/jpeg body, send it in the querystring (?label=7)',
      );
    return {
      image: body.image,
      scale: 'unit',
      label: query.label,
      modelVersion: query.modelVersion,
      predicted: query.predicted,
      from: 'querystring',
    };
  }
  if (queried.length > 0)
    throw invalidField(
      `querystring.${queried[0]}`,
      `with a JSON body, send ${queried.join(', ')} in the body, not in the querystring`,
    );
  return {
    image: body.image as RawImage,
    scale: body.scale,
    label: body.label!,
    modelVersion: body.modelVersion,
    predicted: body.predicted,
    from: 'body',
  };
}
