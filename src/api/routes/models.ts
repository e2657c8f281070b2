import type { FastifyBaseLogger } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { FeedbackEvaluations } from '../../feedback/feedback-evaluations.js';
import { versionFeedbackAccuracySchema } from '../../feedback/feedback-schema.js';
import { aliasNameSchema } from '../../registry/model-aliases.js';
import { digitFromSprite } from '../../registry/digit-sprite.js';
import { modelMetadataSchema } from '../../registry/model-store.js';
import { errorBodySchema } from '../error-handler.js';
import { DomainError, notFound } from '../../errors.js';
import { checkNotInUse } from '../../jobs/job-rules.js';

const versionParams = z.object({ version: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) });
const pngResponse = (description: string) => ({
  description,
  content: { 'image/png': { schema: z.instanceof(Buffer).meta({ type: 'string', format: 'binary' }) } },
});
// Images of a published version never change: let browsers keep them.
const IMMUTABLE = 'public, max-age=31536000, immutable';

const summarySchema = modelMetadataSchema.pick({
  version: true,
  createdAt: true,
  jobId: true,
  architecture: true,
  backend: true,
  parameterCount: true,
  trainImages: true,
  accuracy: true,
  // The data set and base version the web page's list and fine-tune select show (issue 15).
  params: true,
});

const feedbackField = versionFeedbackAccuracySchema
  .nullable()
  .describe(
    'its accuracy on the feedback examples it did not train on; null: not measured (yet), or feedback off',
  );

const modelListSchema = z.object({
  serving: z.int().nullable(),
  models: z.array(summarySchema.extend({ feedback: feedbackField })),
});
export type ModelList = z.infer<typeof modelListSchema>;

/** How long model metadata waits for the feedback figures (in Redis) before it is answered without them. */
const FIGURES_WAIT_MS = 500;

export interface ModelRouteOptions {
  /** Each version's accuracy on the feedback (FEEDBACK=on), shown beside its metadata. */
  evaluations?: FeedbackEvaluations;
}

export const modelRoutes: FastifyPluginAsyncZod<ModelRouteOptions> = async (app, options) => {
  const { evaluations } = options;
  /**
   * The feedback figures, or null: they are extra, so while Redis is away (or slow) the metadata,
   * which comes from the store alone, is still answered.
   */
  async function figures<T>(
    read: (e: FeedbackEvaluations) => Promise<T>,
    log: FastifyBaseLogger,
  ): Promise<T | null> {
    if (!evaluations) return null;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), FIGURES_WAIT_MS)));
    try {
      return await Promise.race([read(evaluations), late]);
    } catch (err) {
      log.warn({ err }, 'could not read the feedback figures');
      return null;
    } finally {
      clearTimeout(timer);
    }
  }

  app.get(
    '/models',
    {
      schema: {
        summary: 'Model versions, newest first, and the one being served',
        response: { 200: modelListSchema },
      },
    },
    async (request) => {
      const [metadata, measured] = await Promise.all([
        app.store.list(),
        figures((e) => e.all(), request.log),
      ]);
      const byVersion = new Map((measured ?? []).map((f) => [f.version, f]));
      const models = metadata
        .reverse()
        .map((m) => ({ ...summarySchema.parse(m), feedback: byVersion.get(m.version) ?? null }));
      return { serving: app.predictor.version, models };
    },
  );

  app.get(
    '/models/:version',
    {
      schema: {
        summary: "A version's metadata: parameters, metrics, history, confusion matrix, errors",
        params: versionParams,
        response: {
          200: modelMetadataSchema.extend({ feedback: feedbackField }),
          400: errorBodySchema,
          404: errorBodySchema,
        },
      },
    },
    async (request) => {
      const { version } = request.params;
      const [metadata, feedback] = await Promise.all([
        app.store.get(version),
        figures((e) => e.forVersion(version), request.log),
      ]);
      if (!metadata) throw notFound(`model version ${version}`);
      return { ...metadata, feedback };
    },
  );

  /** The version's sprite, or a 404 that says whether the version or only its images are missing. */
  async function spriteOf(version: number): Promise<Buffer> {
    const sprite = await app.store.misclassifiedSprite(version);
    if (sprite) return sprite;
    if (!(await app.store.get(version))) throw notFound(`model version ${version}`);
    throw new DomainError(
      `model version ${version} has no misclassified images (it has no errors, or was published before they were kept)`,
      { status: 404, code: 'not_found' },
    );
  }

  app.get(
    '/models/:version/misclassified.png',
    {
      schema: {
        summary: "A version's misclassified test digits as one PNG: 28 px wide, digit i at y = 28 i",
        description: "Digits in the order of the metadata's `misclassified` list.",
        params: versionParams,
        response: {
          200: pngResponse('grayscale PNG, 28 x (28 * misclassified.length)'),
          400: errorBodySchema,
          404: errorBodySchema,
        },
      },
    },
    async (request, reply) => {
      const sprite = await spriteOf(request.params.version);
      return reply.type('image/png').header('cache-control', IMMUTABLE).send(sprite);
    },
  );

  app.get(
    '/models/:version/misclassified/:index.png',
    {
      schema: {
        summary: "One of a version's misclassified test digits as a 28x28 PNG",
        description: "`index` is the position in the metadata's `misclassified` list (0 = most confident).",
        params: versionParams.extend({ index: z.coerce.number().int().min(0).max(9_999) }),
        response: { 200: pngResponse('grayscale PNG, 28 x 28'), 400: errorBodySchema, 404: errorBodySchema },
      },
    },
    async (request, reply) => {
      const { version, index } = request.params;
      const sprite = await spriteOf(version);
      const png = await digitFromSprite(sprite, index);
      if (!png) throw notFound(`misclassified digit ${index} of model version ${version}`);
      return reply.type('image/png').header('cache-control', IMMUTABLE).send(png);
    },
  );

  app.delete(
    '/models/:version',
    {
      config: { auth: 'admin' },
      schema: {
        summary: 'Delete a version (refused while an alias points at it)',
        params: versionParams,
        response: { 204: z.null(), 400: errorBodySchema, 404: errorBodySchema, 409: errorBodySchema },
      },
    },
    async (request, reply) => {
      const { version } = request.params;
      // A queued fine-tune would fail without its base. (One queued after this look fails the same
      // way, clearly: this is a courtesy, not a lock.)
      const tuning = await app.jobs.unfinishedJobsWhere((params) => params.baseVersion === version);
      checkNotInUse(`model version ${version}`, 'the base of', tuning);
      // Marked in Redis first, atomically against alias changes (src/registry/model-aliases.ts):
      // from here on no alias can be pointed at it, however the requests interleave.
      const aliases = await app.aliases.markDeleted(version);
      if (aliases.length > 0) {
        throw new DomainError(
          `model version ${version} is aliased as ${aliases.join(', ')}; move the alias first`,
          { status: 409, code: 'conflict' },
        );
      }
      if (!(await app.store.remove(version))) {
        await app.aliases.unmarkDeleted(version);
        throw notFound(`model version ${version}`);
      }
      request.log.info({ modelVersion: version }, 'model version deleted');
      // This replica stops serving it now, the others when they hear of it.
      await app.predictor
        .evict(version)
        .catch((err: unknown) => request.log.warn({ err }, 'could not load another version to serve'));
      await app.aliases
        .announceDeleted(version)
        .catch((err: unknown) => request.log.warn({ err }, 'could not announce the deletion'));
      return reply.status(204).send(null);
    },
  );

  const aliasParams = z.object({ name: aliasNameSchema });

  app.get(
    '/models/aliases',
    {
      schema: {
        summary: 'Every alias and the version it names',
        response: { 200: z.record(z.string(), z.int()) },
      },
    },
    async () => app.aliases.all(),
  );

  app.put(
    '/models/aliases/:name',
    {
      config: { auth: 'admin' },
      schema: {
        summary: 'Point an alias at a version (promote, roll back)',
        params: aliasParams,
        body: z.object({ version: z.int().min(1).max(Number.MAX_SAFE_INTEGER) }).strict(),
        response: {
          200: z.object({ name: z.string(), version: z.int() }),
          400: errorBodySchema,
          404: errorBodySchema,
        },
      },
    },
    async (request) => {
      const { name } = request.params;
      const { version } = request.body;
      if (!(await app.store.get(version))) throw notFound(`model version ${version}`);
      // Refused when a DELETE of the version got there first (checked in the same script).
      if (!(await app.aliases.set(name, version)))
        throw new DomainError(`model version ${version} not found: it is being deleted`, {
          status: 404,
          code: 'not_found',
        });
      request.log.info({ alias: name, modelVersion: version }, 'alias moved');
      return { name, version };
    },
  );

  app.delete(
    '/models/aliases/:name',
    {
      config: { auth: 'admin' },
      schema: {
        summary: 'Remove an alias',
        params: aliasParams,
        response: { 204: z.null(), 400: errorBodySchema, 404: errorBodySchema },
      },
    },
    async (request, reply) => {
      if (!(await app.aliases.remove(request.params.name))) throw notFound(`alias ${request.params.name}`);
      return reply.status(204).send(null);
    },
  );
};
