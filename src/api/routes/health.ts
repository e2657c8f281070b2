import type { FastifyBaseLogger } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ModelStore } from '../../registry/model-store.js';

const readinessSchema = z.object({
  ready: z.boolean(),
  shuttingDown: z.boolean().describe('true from SIGTERM on: take this replica out of the load balancer'),
  checks: z.object({
    redis: z.object({ ok: z.boolean(), error: z.string().optional() }),
    modelStore: z.object({ ok: z.boolean(), error: z.string().optional() }),
  }),
  model: z.object({ loaded: z.boolean(), version: z.int().nullable() }),
});

/**
 * `/healthz`: the process answers (restart it if not). `/readyz`: it can do its work, so a load
 * balancer should send it traffic: Redis answers and the model store can be read. Whether a model
 * is loaded is reported, not required: a fresh service must accept its first training job.
 */
export interface HealthRouteOptions {
  /** The model store this API serves from; its probe says whether it can be read now. */
  store?: Pick<ModelStore, 'probe'>;
  /** True once the process is shutting down (it still answers while load balancers catch up). */
  shuttingDown?: () => boolean;
}

// Load balancers' health checks must never be turned away by a rate limit, nor fill the logs at info.
const PROBE = { auth: 'open', rateLimitBucket: 'none', poll: true } as const;

export const healthRoutes: FastifyPluginAsyncZod<HealthRouteOptions> = async (app, options) => {
  app.get(
    '/healthz',
    {
      config: PROBE,
      schema: { summary: 'Liveness', response: { 200: z.object({ status: z.literal('ok') }) } },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      config: PROBE,
      schema: {
        summary: 'Readiness, with the reason when not ready',
        response: {
          200: readinessSchema.describe('ready'),
          503: readinessSchema.describe('not ready, or shutting down: `checks` names what failed'),
        },
      },
    },
    async (request, reply) => {
      const [redis, modelStore] = await Promise.all([
        check(request.log, 'Redis does not answer', () => withTimeout(app.jobs.ping(), 1000)),
        check(request.log, 'the model store cannot be read', () =>
          options.store ? withTimeout(options.store.probe(), 2000) : Promise.resolve(),
        ),
      ]);
      const version = app.hasDecorator('predictor') ? app.predictor.version : null;
      const shuttingDown = options.shuttingDown?.() ?? false;
      const body = {
        ready: !shuttingDown && redis.ok && modelStore.ok,
        shuttingDown,
        checks: { redis, modelStore },
        model: { loaded: version !== null, version },
      };
      return reply.status(body.ready ? 200 : 503).send(body);
    },
  );
};

/** A check's outcome: the error itself goes to the log, the answer says only what failed. */
async function check(
  log: FastifyBaseLogger,
  failure: string,
  run: () => Promise<unknown>,
): Promise<{ ok: boolean; error?: string }> {
  try {
    await run();
    return { ok: true };
  } catch (error) {
    log.warn({ err: error }, `not ready: ${failure}`);
    return { ok: false, error: failure };
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref(),
    ),
  ]);
}
