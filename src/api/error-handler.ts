import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ERROR_CODES, errorBody, errorCodeSchema, type ErrorCode } from '../error-codes.js';
import { DomainError } from '../errors.js';
import { lingerBeforeClose } from './lingering-close.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Body content types the route takes, named in its 415 answer; @default JSON if it has a body schema */
    accepts?: string[];
  }
}

export const errorBodySchema = z.object({
  error: z.object({ code: errorCodeSchema, message: z.string(), details: z.unknown().optional() }),
});

/**
 * One place that turns errors into `{ error: { code, message, details? } }`. Client errors name
 * the problem; server errors are logged with the request and answered without internals.
 */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      const details = error.validation.map((v) => ({
        field: `${error.validationContext ?? 'body'}${v.instancePath.replaceAll('/', '.') || ''}`,
        message: v.message ?? 'invalid',
      }));
      const message = details.map((d) => `${d.field}: ${d.message}`).join('; ');
      return reply.status(400).send(errorBody('invalid_request', message, details));
    }
    if (error instanceof DomainError) {
      if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
      return reply.status(error.status).send(errorBody(error.code, error.message, error.details));
    }
    if ((error.statusCode ?? 500) < 500) {
      // Fastify's own client errors (unparsable JSON, a body too large, a wrong content type, ...)
      // and its plugins': answered with our codes, never the framework's.
      const [code, message] = frameworkError(error, request);
      const status = ERROR_CODES[code].status;
      // Too large: answered before the body has all arrived, so the client is likely still sending.
      if (status === 413) lingerBeforeClose(request.raw.socket);
      return reply.status(status).send(errorBody(code, message));
    }
    request.log.error({ err: error }, 'request failed');
    return reply.status(500).send(errorBody('internal', 'Internal server error'));
  });

  app.setNotFoundHandler((request, reply) =>
    reply
      .status(404)
      .send(errorBody('not_found', `no route for ${request.method} ${request.url.split('?')[0]}`)),
  );
}

/** Fastify's client errors by their code: ours, and a message that says what to send instead. */
const FASTIFY_ERRORS: Record<string, (request: FastifyRequest, error: FastifyError) => [ErrorCode, string]> =
  {
    FST_ERR_CTP_INVALID_JSON_BODY: () => [
      'invalid_json',
      'the body is not valid JSON (or has a __proto__ or constructor.prototype key); send a JSON object',
    ],
    FST_ERR_CTP_EMPTY_JSON_BODY: () => [
      'empty_body',
      'the body is empty but Content-Type is application/json; send a JSON object',
    ],
    FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => [
      'bad_request',
      'the body is not as long as its Content-Length says',
    ],
    FST_ERR_CTP_BODY_TOO_LARGE: (request) => [
      'payload_too_large',
      `the body is over this route's limit of ${request.routeOptions.bodyLimit} bytes`,
    ],
    FST_ERR_CTP_INVALID_MEDIA_TYPE: (request) => ['unsupported_media_type', unsupportedTypeMessage(request)],
    // @fastify/static's answer to a web page path spelt with '.', '..' or '//' segments.
    FST_STATIC_FORBIDDEN_PATH: () => [
      'forbidden_path',
      'this path is not in a form the web page is served at',
    ],
  };

/** Client errors with no code above (@fastify/send's, a body stream's), by status. */
const BY_STATUS: Partial<Record<number, ErrorCode>> = {
  404: 'not_found',
  412: 'precondition_failed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  416: 'range_not_satisfiable',
};

function frameworkError(error: FastifyError, request: FastifyRequest): [ErrorCode, string] {
  const known = error.code === undefined ? undefined : FASTIFY_ERRORS[error.code];
  if (known) return known(request, error);
  // Any other status becomes a 400: an answer's status is always the one its code documents.
  return [BY_STATUS[error.statusCode ?? 400] ?? 'bad_request', error.message];
}

/**
 * The body content types a route takes: its `config.accepts`, else JSON when it has a body schema,
 * else none. Its 415 answer and its OpenAPI request body both come from this.
 */
export function acceptedTypes(route: {
  config?: { accepts?: string[] };
  schema?: { body?: unknown };
}): string[] {
  return route.config?.accepts ?? (route.schema?.body ? ['application/json'] : []);
}

/** Fastify says only "Unsupported Media Type": say which type came and which ones would do. */
function unsupportedTypeMessage(request: FastifyRequest): string {
  const type = request.headers['content-type'];
  const given = type ? `Content-Type ${type.slice(0, 100)}` : 'a body without a Content-Type';
  const accepts = acceptedTypes(request.routeOptions);
  if (accepts.length === 0) return `${given} is not accepted here; this route takes no body`;
  const wanted = accepts.length > 1 ? `${accepts.slice(0, -1).join(', ')} or ${accepts.at(-1)}` : accepts[0];
  return `${given} is not accepted here; send ${wanted}`;
}
