import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../http-error.js';

export interface AuthOptions {
  /** When set, job and model administration need it; unset, they are open (logged at start). */
  apiKey?: string | undefined;
  /** Require the key for /predict too. */
  protectPredict?: boolean;
}

/** Routes that change state: starting or cancelling jobs, moving aliases, deleting versions. */
function isAdmin(method: string, path: string): boolean {
  if (path === '/jobs' || path.startsWith('/jobs/')) return method === 'POST' || method === 'DELETE';
  if (path === '/models' || path.startsWith('/models/'))
    return method === 'PUT' || method === 'DELETE' || method === 'POST';
  return false;
}

/** The key from `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
function presentedKey(request: FastifyRequest): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
  if (bearer) return bearer[1]!.trim();
  const header = request.headers['x-api-key'];
  return typeof header === 'string' ? header : undefined;
}

// Hashing both sides first gives equal lengths, so the comparison takes the same time for any guess.
const digest = (value: string) => createHash('sha256').update(value).digest();

export function registerAuth(app: FastifyInstance, options: AuthOptions): void {
  const { apiKey } = options;
  if (!apiKey) return;
  const expected = digest(apiKey);
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0]!;
    const needsKey =
      isAdmin(request.method, path) || (options.protectPredict === true && path === '/predict');
    if (!needsKey) return;
    const key = presentedKey(request);
    if (key !== undefined && timingSafeEqual(digest(key), expected)) return;
    reply.header('www-authenticate', 'Bearer');
    throw new HttpError(
      401,
      'unauthorized',
      key === undefined
        ? 'this route needs the API key: send Authorization: Bearer <key> or X-API-Key: <key>'
        : 'the API key is not valid',
    );
  });
}
