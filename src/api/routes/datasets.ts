import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { DatasetCatalog } from '../../datasets/dataset-catalog.js';
import type { DatasetLimits } from '../../datasets/dataset-limits.js';
import { datasetNameSchema, datasetRecordSchema } from '../../datasets/dataset-record.js';
import {
  parseClassesParam,
  parseUploadContentType,
  UPLOAD_CONTENT_TYPES,
} from '../../datasets/dataset-upload.js';
import { DomainError, notFound } from '../../errors.js';
import { FEEDBACK_DATASET } from '../../feedback/feedback-schema.js';
import { checkNotInUse } from '../../jobs/job-rules.js';
import { ConcurrencyLimit, QueueFullError } from '../concurrency-limit.js';
import { errorBodySchema } from '../error-handler.js';

/** Windows browsers send zips under this older name. */
const ZIP_ALIASES = ['application/x-zip-compressed'];

// Any text up to the router's limit: an id that is not one is simply not found.
/** Uploads received and waiting to be processed, per API process. */
const UPLOADS_WAITING = 16;

const idParams = z.object({ id: z.string().min(1).max(256) });
const pngResponse = (description: string) => ({
  description,
  content: { 'image/png': { schema: z.instanceof(Buffer).meta({ type: 'string', format: 'binary' }) } },
});
// A dataset never changes once visible (a new upload is a new id): browsers may keep its pictures.
const IMMUTABLE = 'public, max-age=31536000, immutable';

const uploadQuerySchema = z.object({
  name: datasetNameSchema.describe('what to call the dataset (its id is made from it)'),
  classes: z
    .string()
    .max(64 * 257)
    .optional()
    .describe('CSV only: the name of each label, comma-separated, label 0 first'),
});

const datasetListSchema = z.object({ datasets: z.array(datasetRecordSchema) });

export interface DatasetRouteOptions {
  catalog: DatasetCatalog;
  limits: DatasetLimits;
  /** Jobs queued or active on a dataset: it cannot be deleted while there are any. */
  jobsUsing(datasetId: string): Promise<string[]>;
  /** Whether feedback is on: then `feedback` is a name jobs train on, answered for here too. */
  feedback?: boolean;
}

/**
 * The feedback examples are a dataset jobs name (`datasets: ['mnist', 'feedback']`), but not one of
 * these records: they grow one at a time, with the classes each was checked against, and have
 * routes of their own. Asked for here, the answer says where they are; nothing deletes them whole.
 */
function notADatasetRecord(): never {
  throw new DomainError(
    `${FEEDBACK_DATASET} is the feedback examples, not an uploaded dataset: GET /feedback and ` +
      `/feedback/samples.png show them, and a job trains on them with datasets: ['mnist', '${FEEDBACK_DATASET}']`,
    { status: 404, code: 'not_found' },
  );
}

export const datasetRoutes: FastifyPluginAsyncZod<DatasetRouteOptions> = async (app, options) => {
  const { catalog, limits } = options;
  // Preprocessing an upload keeps a core busy for a while: one at a time per process, the others
  // in a line once their bodies are on disk (src/datasets/dataset-store.ts), and past the line a
  // 503 saying when to come back.
  const uploads = new ConcurrencyLimit({ concurrency: 1, maxWaiting: UPLOADS_WAITING });
  const inLine = async <T>(socket: Socket | undefined, work: () => Promise<T>): Promise<T> => {
    // The body is in; what is left is ours (a minute or more for 60,000 images) and bounded by
    // the DATASET_* limits, so the idle timeout, meant for clients that stall, must not cut it.
    socket?.setTimeout(0);
    try {
      return await uploads.run(work);
    } catch (error) {
      if (!(error instanceof QueueFullError)) throw error;
      throw new DomainError(
        'this server is processing as many dataset uploads as it can; try again shortly',
        {
          status: 503,
          code: 'overloaded',
          retryAfterSeconds: 10,
          cause: error,
        },
      );
    }
  };

  // The body stays a stream: the store writes it to disk as it arrives, counting bytes, so a large
  // upload never sits in memory and one over DATASET_MAX_BYTES is cut off when it passes it.
  app.addContentTypeParser([...UPLOAD_CONTENT_TYPES, ...ZIP_ALIASES], (_request, payload, done) =>
    done(null, payload),
  );

  app.post(
    '/datasets',
    {
      config: { auth: 'admin', accepts: [...UPLOAD_CONTENT_TYPES] },
      schema: {
        summary: 'Upload a dataset: a zip (a folder per class, or MNIST idx files) or a Kaggle-style CSV',
        description:
          'A zip holds `<class>/<file>.png|.jpg` (optional top-level `train/` and `test/`), or ' +
          '`*-images-idx3-ubyte` and `*-labels-idx1-ubyte` files (raw or .gz) with an optional ' +
          '`classes.txt`. A CSV has a header, then `label` and 784 pixel values 0..255 per row. ' +
          'Images go through the same preprocessing as /predict. The dataset is listed only once ' +
          'it is stored whole.',
        querystring: uploadQuerySchema,
        // The parser above hands the handler the raw stream. The document gives it as binary under
        // each of config.accepts (src/api/openapi-contract.ts).
        body: z.unknown(),
        response: {
          201: datasetRecordSchema,
          400: errorBodySchema,
          413: errorBodySchema.describe('over DATASET_MAX_BYTES'),
          415: errorBodySchema,
          503: errorBodySchema.describe(
            'more uploads waiting to be processed than this server lines up (Retry-After)',
          ),
        },
      },
    },
    async (request, reply) => {
      // Only the upload types reach here as a stream (the parser above); any other is a 415.
      const contentType = parseUploadContentType(request.headers['content-type']);
      const classes =
        request.query.classes === undefined ? undefined : parseClassesParam(request.query.classes);
      const declared = Number(request.headers['content-length']);
      // An answer before the body is read: the rest of it is not wanted, so the socket goes.
      const refuse = (error: unknown) => {
        reply.header('connection', 'close');
        throw error;
      };
      const abort = new AbortController();
      request.raw.once('close', () => {
        if (!request.raw.complete) abort.abort(new Error('the client went away during the upload'));
      });
      const record = await catalog
        .ingest(
          request.body as Readable,
          {
            name: request.query.name,
            contentType,
            ...(classes ? { classes } : {}),
            ...(Number.isFinite(declared) ? { declaredBytes: declared } : {}),
          },
          limits,
          abort.signal,
          (work) => inLine(request.raw.socket, work),
        )
        .catch(refuse);
      request.log.info(
        {
          datasetId: record.id,
          classes: record.classes.length,
          train: record.counts.train,
          test: record.counts.test,
          skipped: record.skippedCount,
        },
        'dataset stored',
      );
      return reply.status(201).header('location', `/datasets/${record.id}`).send(record);
    },
  );

  app.get(
    '/datasets',
    {
      schema: {
        summary: 'Datasets jobs can train on: the built-in ones, then uploads, oldest first',
        response: { 200: datasetListSchema },
      },
    },
    async () => ({ datasets: await catalog.list() }),
  );

  app.get(
    '/datasets/:id',
    {
      schema: {
        summary: 'One dataset: its classes and how many images each split holds',
        params: idParams,
        response: { 200: datasetRecordSchema, 404: errorBodySchema },
      },
    },
    async (request) => {
      if (options.feedback && request.params.id === FEEDBACK_DATASET) notADatasetRecord();
      const record = await catalog.get(request.params.id);
      if (!record) throw notFound(`dataset ${request.params.id}`);
      return record;
    },
  );

  app.get(
    '/datasets/:id/samples.png',
    {
      schema: {
        summary: 'Examples of each class as one PNG: a row per class, 28 px per image',
        params: idParams,
        response: { 200: pngResponse('grayscale PNG, classes in label order'), 404: errorBodySchema },
      },
    },
    async (request, reply) => {
      if (options.feedback && request.params.id === FEEDBACK_DATASET) notADatasetRecord();
      const png = await catalog.samplesPng(request.params.id);
      if (!png) throw notFound(`dataset ${request.params.id}`);
      return reply.type('image/png').header('cache-control', IMMUTABLE).send(png);
    },
  );

  app.delete(
    '/datasets/:id',
    {
      config: { auth: 'admin' },
      schema: {
        summary: 'Delete an uploaded dataset; models trained on it keep their class names',
        params: idParams,
        response: {
          204: z.null().describe('deleted'),
          404: errorBodySchema,
          403: errorBodySchema.describe('`read_only`: a built-in dataset, or the feedback examples'),
          409: errorBodySchema.describe('a queued or active job trains on it'),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (options.feedback && id === FEEDBACK_DATASET)
        throw new DomainError(
          `${FEEDBACK_DATASET} is the feedback examples and is not deleted whole: delete a bad example ` +
            'with DELETE /feedback/:id',
          { status: 403, code: 'read_only' },
        );
      // Hidden first, then the jobs are looked at: a job created meanwhile looks for the dataset
      // after it is queued (src/api/routes/jobs.ts), so one of the two always sees the other.
      const removed = await catalog.remove(id, {
        beforeDelete: async () =>
          checkNotInUse(`dataset ${id}`, 'the dataset of', await options.jobsUsing(id)),
      });
      if (!removed) throw notFound(`dataset ${id}`);
      request.log.info({ datasetId: id }, 'dataset deleted');
      return reply.status(204).send(null);
    },
  );
};
