import fp from 'fastify-plugin';
import { z } from 'zod';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics, one registry per app (tests build several apps in one process). What an
 * operator watches: request latency by route and status, predictions by model version, the
 * micro-batch sizes, model load time, jobs by state, queue depth and the speed of running jobs.
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly requestSeconds = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly predictions = new Counter({
    name: 'predictions_total',
    help: 'Images classified, by model version',
    labelNames: ['model_version'],
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: 'predict_batch_size',
    help: 'Images per model call (micro-batches of single-image requests and explicit batches)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });
  readonly modelLoadSeconds = new Histogram({
    name: 'model_load_seconds',
    help: 'Time to load and warm a model version',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  /** What the predictor reports: each model call's size and version, each model load's time. */
  readonly predictorObserver = {
    batch: (version: number, size: number) => {
      this.predictions.inc({ model_version: String(version) }, size);
      this.batchSize.observe(size);
    },
    load: (seconds: number) => this.modelLoadSeconds.observe(seconds),
  };

  constructor(sources: {
    jobCounts?: () => Promise<Record<string, number>>;
    trainingSpeeds?: () => Promise<number[]>;
  }) {
    collectDefaultMetrics({ register: this.registry });
    const { jobCounts, trainingSpeeds } = sources;
    if (jobCounts) {
      new Gauge({
        name: 'training_jobs',
        help: 'Retained training jobs by state (failed includes cancelled)',
        labelNames: ['state'],
        registers: [this.registry],
        async collect() {
          const counts = await jobCounts();
          for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
        },
      });
      new Gauge({
        name: 'training_queue_depth',
        help: 'Jobs waiting for a worker',
        registers: [this.registry],
        async collect() {
          this.set((await jobCounts()).queued ?? 0);
        },
      });
    }
    if (trainingSpeeds) {
      new Gauge({
        name: 'training_images_per_second',
        help: 'Training speed summed over running jobs',
        registers: [this.registry],
        async collect() {
          this.set((await trainingSpeeds()).reduce((a, b) => a + b, 0));
        },
      });
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ServiceMetrics;
  }
}

/** Times every request and serves `/metrics`, protected as METRICS_REQUIRES_KEY says (auth plugin). */
export const metricsPlugin = fp<{ metrics: ServiceMetrics }>(
  async (app, { metrics }) => {
    app.decorate('metrics', metrics);
    app.addHook('onResponse', async (request, reply) => {
      // The route pattern, not the URL: ids would make one series per job.
      const route = request.routeOptions.url ?? 'unmatched';
      metrics.requestSeconds.observe(
        { method: request.method, route, status: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
    });
    // A Prometheus scraper must never be turned away by a rate limit, nor fill the logs at info;
    // the key is METRICS_REQUIRES_KEY's call.
    const config = { auth: 'metrics', rateLimitBucket: 'none', poll: true } as const;
    const schema = {
      summary: 'Prometheus metrics: requests, predictions, batch sizes, model loads, jobs and queue',
      description:
        'The Prometheus text exposition format, for a scraper (METRICS_REQUIRES_KEY: with the key).',
      response: {
        200: {
          description: 'every metric, one sample a line',
          content: { [metrics.registry.contentType]: { schema: z.string() } },
        },
      },
    };
    app.get('/metrics', { config, schema }, async (_request, reply) => {
      reply.header('content-type', metrics.registry.contentType);
      return metrics.registry.metrics();
    });
  },
  { name: 'metrics', dependencies: ['auth'] },
);
