import { isAbsolute, resolve, sep } from 'node:path';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { jobStateSchema, jobViewSchema, type JobView } from '../../jobs/job-schema.js';
import { errorMessage } from '../../fs-durable.js';
import { trainingImageCount } from '../../ml/data/dataset.js';
import { trainParamsSchema, type TrainParams } from '../../ml/train-params.js';
import { errorBodySchema } from '../error-handler.js';
import { invalidField, notFound } from '../../errors.js';
import { StreamCaps, type StreamCapOptions } from '../stream-caps.js';

const idParams = z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'not a job id') });
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export interface JobRouteOptions {
  /**
   * Directories under which a job's `dataset` may be an absolute path; none by default, so API
   * clients cannot make workers read wherever they like. The CLI is not limited.
   */
  datasetDirs?: string[];
  /** Most epochs x training images one job may ask for; @default no limit */
  maxImages?: number;
  /** Event streams open at once per client address and in all; @default no cap */
  eventStreams?: StreamCapOptions;
}

export const jobRoutes: FastifyPluginAsyncZod<JobRouteOptions> = async (app, options) => {
  const { jobs, jobEvents } = app;
  const datasetDirs = (options.datasetDirs ?? []).map((dir) => resolve(dir));

  app.post(
    '/jobs',
    {
      config: { auth: 'admin' },
      schema: {
        summary: 'Start a training job',
        body: trainParamsSchema,
        headers: z.object({ 'idempotency-key': z.string().min(1).max(255).optional() }),
        response: {
          200: jobViewSchema,
          202: jobViewSchema,
          400: errorBodySchema,
          409: errorBodySchema.describe(
            'Idempotency-Key reused with other parameters, or still in use (Retry-After)',
          ),
          429: errorBodySchema.describe('rate limit, or JOB_MAX_WAITING jobs waiting (Retry-After)'),
        },
      },
    },
    async (request, reply) => {
      checkDatasetAllowed(request.body.dataset, datasetDirs);
      await checkWorkBound(request.body, options.maxImages);
      const { view, created } = await jobs.enqueue(request.body, request.headers['idempotency-key']);
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
          state: jobStateSchema.optional(),
          limit: z.coerce.number().int().min(1).max(100).default(20),
          offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
        }),
        response: {
          200: z.object({ jobs: z.array(jobViewSchema), total: z.int(), limit: z.int(), offset: z.int() }),
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

  // Open event streams never end on their own while a job runs; closing the server ends them, and
  // browsers' EventSource reconnects (to another replica, behind a load balancer).
  const streams = new Set<() => void>();
  const streamCaps = options.eventStreams && new StreamCaps(options.eventStreams);
  app.addHook('preClose', async () => {
    for (const end of streams) end();
  });

  app.get(
    '/jobs/:id/events',
    {
      schema: {
        summary: 'Server-Sent Events: progress, then the final state',
        params: idParams,
        response: {
          200: z.string().describe('text/event-stream: events state, progress..., end (the final job)'),
          404: errorBodySchema,
          429: errorBodySchema.describe('too many streams open, from this client or in all'),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const first = await jobs.get(id);
      if (!first) throw notFound(`job ${id}`);
      const leave = streamCaps?.admit(request.ip);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      const send = (event: string, data: unknown) =>
        res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      let closed = false;
      const finish = (view: JobView) => {
        if (closed) return;
        closed = true;
        send('end', view);
        stop();
        res.end();
      };
      send('state', first);
      const unwatch = jobEvents.watch(id, (event) => {
        if (event.type === 'progress') send('progress', event.data);
        // The view after the fact carries the result or the reason, and whether it was a cancel.
        else void jobs.get(id).then((view) => view && finish(view));
      });
      const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
      const endStream = () => {
        closed = true;
        stop();
        res.end();
      };
      streams.add(endStream);
      const stop = () => {
        streams.delete(endStream);
        unwatch();
        clearInterval(heartbeat);
        leave?.();
      };
      request.raw.on('close', () => {
        closed = true;
        stop();
      });
      // A client gone while the job was read above: no 'close' is coming for it.
      if (res.destroyed) {
        closed = true;
        stop();
      }
      // The job may have finished between the first read and the subscription.
      const now = await jobs.get(id);
      if (now && TERMINAL.has(now.state)) finish(now);
    },
  );
};

function checkDatasetAllowed(dataset: string, allowed: string[]): void {
  if (!isAbsolute(dataset)) return;
  // resolve() folds '..' away, so /allowed/../etc is judged as /etc.
  const dir = resolve(dataset);
  if (allowed.some((root) => dir === root || dir.startsWith(root + sep))) return;
  const message = allowed.length
    ? `dataset: ${dataset} is not under a directory this service reads from (DATASET_DIRS)`
    : "dataset: this service trains only on 'mnist' and 'fashion-mnist' (DATASET_DIRS is not set)";
  throw invalidField('body.dataset', message);
}

async function checkWorkBound(params: TrainParams, maxImages: number | undefined): Promise<void> {
  if (maxImages === undefined) return;
  // What was asked for settles most jobs; otherwise the data set's real size counts: one given by
  // path may hold far more than MNIST's 60,000 training images.
  if (params.trainSize !== undefined && params.epochs * params.trainSize <= maxImages) return;
  const available = Math.max(0, (await datasetSize(params.dataset)) - params.validationSize);
  const images = params.epochs * Math.min(params.trainSize ?? available, available);
  if (images <= maxImages) return;
  const message =
    `epochs x training images is ${images.toLocaleString('en-US')}; this service trains at most ` +
    `${maxImages.toLocaleString('en-US')} per job (JOB_MAX_IMAGES): lower epochs or trainSize`;
  throw invalidField('body.epochs', message);
}

/** Without its size the bound cannot be checked: the job is refused, saying why. */
async function datasetSize(dataset: string): Promise<number> {
  try {
    return await trainingImageCount(dataset);
  } catch (err) {
    const message = `dataset: cannot read its size to check it against JOB_MAX_IMAGES: ${errorMessage(err)}`;
    throw invalidField('body.dataset', message);
  }
}
