import rateLimit from '@fastify/rate-limit';
import type { FastifyContextConfig, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { DomainError } from '../../errors.js';

/**
 * Which count a route's requests use: 'predict' and 'feedback' apart, so a client's predictions
 * and corrections do not use up its job submissions or each other; 'none' for the probes, which a
 * load balancer and a Prometheus scraper must always reach. Declared on the route
 * (`config.rateLimitBucket`), never read from the URL.
 */
export type RateLimitBucket = 'api' | 'predict' | 'feedback' | 'none';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The request count the route uses; @default 'api' */
    rateLimitBucket?: RateLimitBucket;
  }
}

export interface RateLimitSettings {
  /** Redis shared by every replica, so a client's count is the same whichever replica it hits. */
  redis: Redis;
  prefix: string;
  /** Requests per minute per client for everything but /predict and the probes; 0 = no limit. */
  perMinute: number;
  /** The same for /predict; 0 = no limit. */
  predictPerMinute: number;
  /** The same for POST /feedback; 0 = no limit. @default 0 */
  feedbackPerMinute?: number;
  /**
   * How long a count lasts; the limits are per minute, so only tests change it: with an hour,
   * a test's requests cannot fall into two windows and reset the count halfway. @default 60_000
   */
  windowMs?: number;
}

const UNLIMITED = Number.MAX_SAFE_INTEGER;
/** How long a limit check may wait for Redis before the request goes ahead unchecked. */
const CHECK_TIMEOUT_MS = 500;

/** The bucket a route's requests count in, as its config declares. */
export const bucketOf = (config: FastifyContextConfig | undefined): RateLimitBucket =>
  config?.rateLimitBucket ?? 'api';

/** Requests per minute per client in each bucket; 0: no limit (never a 429). None without settings. */
export function bucketLimits(settings: RateLimitSettings | undefined): Record<RateLimitBucket, number> {
  return {
    api: settings?.perMinute ?? 0,
    predict: settings?.predictPerMinute ?? 0,
    feedback: settings?.feedbackPerMinute ?? 0,
    none: 0,
  };
}

/** Per-client request counts in Redis, by the bucket each route declares; 429 with Retry-After past them. */
export const rateLimitPlugin = fp<RateLimitSettings>(
  async (app, settings) => {
    const limits = bucketLimits(settings);
    const limitOf = (request: FastifyRequest) => limits[bucketOf(request.routeOptions.config)];
    // Checks fail open, on a connection of their own that never queues a command: while Redis is
    // away, the shared connection would hold every request until it is back, and /predict must
    // keep answering from the model it holds (invariant 4, docs/RELIABILITY.md scenario 3).
    const windowMs = settings.windowMs ?? 60_000;
    const per = windowMs === 60_000 ? 'minute' : `${windowMs / 1000} s`;
    const redis = settings.redis.duplicate({
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: CHECK_TIMEOUT_MS,
    });
    redis.on('error', () => undefined);
    app.addHook('onClose', async () => redis.disconnect());
    await readyWithin(redis, 2000);
    await app.register(rateLimit, {
      global: true,
      redis,
      skipOnError: true,
      nameSpace: `${settings.prefix}:ratelimit:`,
      timeWindow: windowMs,
      // A route without a limit needs no count in Redis.
      allowList: (request) => limitOf(request) === 0,
      // request.ip: the client behind trusted proxies (TRUST_PROXY), else the socket's address.
      keyGenerator: (request) => `${request.ip}:${bucketOf(request.routeOptions.config)}`,
      max: (request) => limitOf(request) || UNLIMITED,
      errorResponseBuilder: (_request, context) =>
        // Retry-After is the plugin's own header.
        new DomainError(
          `rate limit of ${context.max} requests per ${per} reached; retry in ${context.after}`,
          {
            status: 429,
            code: 'rate_limited',
          },
        ),
    });
  },
  { name: 'rate-limit' },
);

/** Resolves once the connection is ready, or after `ms` (checks fail open meanwhile). */
function readyWithin(redis: Redis, ms: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      redis.off('ready', done);
      resolve();
    }
    redis.once('ready', done);
  });
}
