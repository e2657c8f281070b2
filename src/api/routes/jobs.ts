import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DomainError, notFound } from '../../errors.js';
import { jobRequestSchema } from '../../jobs/job-request.js';
import { jobParams, type DatasetLookup, type JobRuleOptions } from '../../jobs/job-rules.js';
import { isUploadedDatasetId } from '../../ml/data/dataset.js';
import type { ModelStore } from '../../registry/model-store.js';
import { jobStateSchema, jobViewSchema } from '../../jobs/job-schema.js';
import { trainingDatasets } from '../../ml/train-params.js';
import { errorBodySchema } from '../error-handler.js';
import { JobEventStreams } from '../job-event-stream.js';
import type { StreamCapOptions } from '../stream-caps.js';

const idParams = z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'not a job id') });

export interface JobRouteOptions {
  /** Directories under which a job's `dataset` may be an absolute path (job-rules.ts); @default none */
  datasetDirs?: string[];
  /** Most epochs x training images one job may ask for; @default no limit */
  maxImages?: number;
  /** Event streams open at once per client address and in all; @default no cap */
  eventStreams?: StreamCapOptions;
  /** Uploaded data sets jobs may name; @default none */
  datasets?: DatasetLookup;
  /** The model store, where a fine-tune's base version is; @default none (no fine-tuning) */
  models?: Pick<ModelStore, 'get'>;
  /** Model aliases a base version may be given by; @default none (numbers only) */
  aliases?: JobRuleOptions['aliases'];
  /** The examples sent to POST /feedback, which jobs may train on; @default none */
  feedback?: JobRuleOptions['feedback'];
}

export const jobRoutes: FastifyPluginAsyncZod<JobRouteOptions> = async (app, options) => {
  const { jobs, jobEvents } = app;

  app.post(
    '/jobs',
    {
      config: { auth: 'admin' },
      schema: {
        summary: 'Start a training job',
        body: jobRequestSchema,
        headers: z.object({ 'idempotency-key': z.string().min(1).max(255).optional() }),
        response: {
          200: jobViewSchema,
          202: jobViewSchema,
          400: errorBodySchema,
          409: errorBodySchema.describe(
            'Idempotency-Key reused with other parameters, or still in use (Retry-After); or the dataset was deleted meanwhile',
          ),
          429: errorBodySchema.describe(
            '`queue_full`: JOB_MAX_WAITING jobs are waiting already (Retry-After)',
          ),
        },
      },
    },
    async (request, reply) => {
      const params = await jobParams(request.body, {
        datasetDirs: options.datasetDirs ?? [],
        maxImages: options.maxImages,
        datasets: options.datasets,
        models: options.models,
        feedback: options.feedback,
        aliases: options.aliases,
      });
      const { view, created } = await jobs.enqueue(params, request.headers['idempotency-key']);
      // A DELETE /datasets/<id> hides the data set, then looks for jobs on it: looking again once
      // the job is queued means one of the two always sees the other.
      for (const dataset of created ? trainingDatasets(params).filter(isUploadedDatasetId) : []) {
        if (await options.datasets?.get(dataset)) continue;
        await jobs.cancel(view.id);
        throw new DomainError(`dataset ${dataset} was deleted while the job was being created`, {
          status: 409,
          code: 'dataset_deleted',
        });
      }
      request.log.info({ jobId: view.id, created }, created ? 'training job queued' : 'idempotent retry');
      return reply
        .status(created ? 202 : 200)
        .header('location', `/jobs/${view.id}`)
        .send(view);
    },
  );

  app.get(
    '/jobs',
    {
      schema: {
        summary: 'List jobs, newest first',
        querystring: z.object({
          state: jobStateSchema.optional().describe('only the jobs in this state; default: every state'),
          limit: z.coerce.number().int().min(1).max(100).default(20).describe('most jobs in the answer'),
          offset: z.coerce
            .number()
            .int()
            .min(0)
            .max(1_000_000)
            .default(0)
            .describe('how many of the newest to skip (paging: offset + limit for the next page)'),
        }),
        response: {
          200: z.object({
            jobs: z.array(jobViewSchema).describe('newest first'),
            total: z.int().describe('jobs retained in this state (or in all), not only on this page'),
            limit: z.int(),
            offset: z.int(),
          }),
          400: errorBodySchema,
        },
      },
    },
    async (request) => {
      const { state, limit, offset } = request.query;
      const { jobs: page, total } = await jobs.list({ ...(state ? { state } : {}), limit, offset });
      return { jobs: page, total, limit, offset };
    },
  );

  app.get(
    '/jobs/:id',
    {
      schema: {
        summary: 'A job, its progress and result',
        params: idParams,
        response: { 200: jobViewSchema, 404: errorBodySchema },
      },
    },
    async (request) => {
      const view = await jobs.get(request.params.id);
      if (!view) throw notFound(`job ${request.params.id}`);
      return view;
    },
  );

  app.delete(
    '/jobs/:id',
    {
      config: { auth: 'admin' },
      schema: {
        summary: 'Cancel a queued or active job',
        params: idParams,
        response: { 202: jobViewSchema, 404: errorBodySchema, 409: errorBodySchema },
      },
    },
    async (request, reply) => {
      const view = await jobs.cancel(request.params.id);
      if (!view) throw notFound(`job ${request.params.id}`);
      request.log.info({ jobId: view.id }, 'job cancellation requested');
      return reply.status(202).send(view);
    },
  );

  const streams = new JobEventStreams(jobs, jobEvents, options.eventStreams);
  app.addHook('preClose', async () => streams.endAll());

  app.get(
    '/jobs/:id/events',
    {
      schema: {
        summary: 'Server-Sent Events: progress, then the final state',
        params: idParams,
        response: {
          200: {
            description:
              'Server-Sent Events: `state` (the job as it is, a job view), then `progress` (each a ' +
              "job view's progress) while it trains, then `end` (the job as it finished) and the " +
              'stream closes; `: keep-alive` comments in between',
            content: { 'text/event-stream': { schema: z.string() } },
          },
          404: errorBodySchema,
          429: errorBodySchema.describe(
            '`too_many_streams`: too many streams open, from this client or in all',
          ),
        },
      },
    },
    async (request, reply) => {
      const first = await jobs.get(request.params.id);
      if (!first) throw notFound(`job ${request.params.id}`);
      await streams.stream(request, reply, first);
    },
  );
};
