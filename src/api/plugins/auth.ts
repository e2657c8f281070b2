import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyContextConfig, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { DomainError } from '../../errors.js';

/**
 * Who may call a route. 'admin': state changes (jobs, versions, aliases), the key whenever one is
 * set; 'predict', 'metrics' and 'feedback': the key when PREDICT_REQUIRES_KEY /
 * METRICS_REQUIRES_KEY / FEEDBACK_REQUIRES_KEY ask for it; 'open': anyone.
 */
export type RouteAuth = 'admin' | 'predict' | 'metrics' | 'feedback' | 'open';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; a route that changes state must say (see authPlugin). */
    auth?: RouteAuth;
  }
}

export interface AuthOptions {
  /** When set, admin routes need it; unset, they are open (refused on the network, src/config.ts). */
  apiKey?: string | undefined;
  /** Require the key for /predict too. */
  protectPredict?: boolean;
  /** Require the key for /metrics too. */
  protectMetrics?: boolean;
  /** Require the key for POST /feedback too. */
  protectFeedback?: boolean;
  /**
   * Admin and feedback routes answer only requests addressed to this machine by name (Host
   * localhost, 127.0.0.1 or [::1]): for a keyless API on loopback, which a web page could otherwise
   * drive through DNS rebinding (its own name, resolved to 127.0.0.1). Feedback is stored, so a
   * hostile page must not fill the store with it either.
   */
  loopbackHostOnly?: boolean;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** A route's declared protection; a state-changing route that declares none is treated as admin. */
export function routeAuth(method: string, config: FastifyContextConfig | undefined): RouteAuth {
  return config?.auth ?? (SAFE_METHODS.has(method) ? 'open' : 'admin');
}

/** Whether a route of this kind needs the key under these options: without it, a 401. */
export function needsKey(options: AuthOptions, auth: RouteAuth): boolean {
  if (!options.apiKey || auth === 'open') return false;
  if (auth === 'admin') return true;
  const asked = {
    predict: options.protectPredict,
    metrics: options.protectMetrics,
    feedback: options.protectFeedback,
  };
  return asked[auth] === true;
}

/** Whether a route of this kind answers only requests addressed to this machine by name (else a 403). */
export function checksHost(options: AuthOptions, auth: RouteAuth): boolean {
  return options.loopbackHostOnly === true && (auth === 'admin' || auth === 'feedback');
}

const LOOPBACK_HOST = /^(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$/i;

/** The key from `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
function presentedKey(request: FastifyRequest): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
  if (bearer) return bearer[1]!.trim();
  const header = request.headers['x-api-key'];
  return typeof header === 'string' ? header : undefined;
}

// Hashing both sides first gives equal lengths, so the comparison takes the same time for any guess.
const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Protection decided on the route the router matched, as declared in its config, never on URL
 * text: the router decodes %XX, takes absolute-form targets and drops fragments, so any test of
 * the URL can be walked around (issue 12). Routes registered after this plugin that change state
 * must declare `config.auth`, or the app does not start.
 */
export const authPlugin = fp<AuthOptions>(
  async (app, options) => {
    app.addHook('onRoute', (route) => {
      const methods = [route.method].flat();
      if (route.config?.auth === undefined && methods.some((m) => !SAFE_METHODS.has(m)))
        throw new Error(`route ${methods.join(',')} ${route.url} must declare config.auth`);
    });
    // Nothing to check: every route is open to every Host.
    if (!options.apiKey && !options.loopbackHostOnly) return;
    const expected = options.apiKey ? digest(options.apiKey) : undefined;
    app.addHook('onRequest', async (request, reply) => {
      // No route matched: the 404 answer does nothing a key would guard.
      if (request.is404) return;
      const auth = routeAuth(request.method, request.routeOptions.config);
      // The Host header itself, not request.host, which a trusted proxy's X-Forwarded-Host sets.
      if (checksHost(options, auth)) checkLoopbackHost(request.headers.host);
      if (!needsKey(options, auth)) return;
      const key = presentedKey(request);
      if (key !== undefined && timingSafeEqual(digest(key), expected!)) return;
      reply.header('www-authenticate', 'Bearer');
      throw new DomainError(
        key === undefined
          ? 'this route needs the API key: send Authorization: Bearer <key> or X-API-Key: <key>'
          : 'the API key is not valid',
        { status: 401, code: 'unauthorized' },
      );
    });
  },
  { name: 'auth' },
);

function checkLoopbackHost(host: string | undefined): void {
  if (host !== undefined && LOOPBACK_HOST.test(host)) return;
  throw new DomainError(
    `Host ${host === undefined ? '(none)' : JSON.stringify(host.slice(0, 100))} is not this machine: ` +
      'without API_KEY, state-changing routes answer only requests addressed to localhost, ' +
      '127.0.0.1 or [::1] (a guard against DNS rebinding); set API_KEY to accept other names',
    { status: 403, code: 'forbidden_host' },
  );
}
