import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { HttpError } from '../http-error.js';

export interface RateLimitSettings {
  /** Redis shared by every replica, so a client's count is the same whichever replica it hits. */
  redis: Redis;
  prefix: string;
  /** Requests per minute per client for everything but /predict and the probes; 0 = no limit. */
  perMinute: number;
  /** The same for /predict; 0 = no limit. */
  predictPerMinute: number;
}

const UNLIMITED = Number.MAX_SAFE_INTEGER;
const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

export async function registerRateLimit(app: FastifyInstance, settings: RateLimitSettings): Promise<void> {
  const path = (url: string) => url.split('?')[0]!;
  await app.register(rateLimit, {
    global: true,
    redis: settings.redis,
    nameSpace: `${settings.prefix}:ratelimit:`,
    timeWindow: 60_000,
    // A load balancer's health checks and a Prometheus scraper must never be turned away.
    allowList: (request) => PROBES.has(path(request.url)),
    // /predict counts apart: a client's predictions must not use up its job submissions.
    keyGenerator: (request) => `${request.ip}:${path(request.url) === '/predict' ? 'predict' : 'api'}`,
    max: (request) =>
      (path(request.url) === '/predict' ? settings.predictPerMinute : settings.perMinute) || UNLIMITED,
    errorResponseBuilder: (_request, context) =>
      new HttpError(
        429,
        'rate_limited',
        `rate limit of ${context.max} requests per minute reached; retry in ${context.after}`,
      ),
  });
}
