import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DomainError } from '../errors.js';
import { lingerBeforeClose } from './lingering-close.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Body content types the route takes, named in its 415 answer; @default JSON only */
    accepts?: string[];
  }
}

export const errorBodySchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
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
      return reply.status(400).send({ error: { code: 'invalid_request', message, details } });
    }
    if (error instanceof DomainError) {
      if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
      return reply.status(error.status).send({
        error: {
          code: error.code,
          message: error.message,
          ...(error.details ? { details: error.details } : {}),
        },
      });
    }
    const status = error.statusCode ?? 500;
    if (status < 500) {
      // Fastify's own client errors: unparsable JSON, body too large, wrong content type, ...
      // Too large: answered before the body has all arrived, so the client is likely still sending.
      if (status === 413) lingerBeforeClose(request.raw.socket);
      const message =
        error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
          ? unsupportedTypeMessage(request.headers['content-type'], request.routeOptions.config?.accepts)
          : error.message;
      return reply.status(status).send({ error: { code: codeOf(error, status), message } });
    }
    request.log.error({ err: error }, 'request failed');
    return reply.status(500).send({ error: { code: 'internal', message: 'Internal server error' } });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({
      error: { code: 'not_found', message: `no route for ${request.method} ${request.url.split('?')[0]}` },
    }),
  );
}

function codeOf(error: FastifyError, status: number): string {
  if (status === 413) return 'payload_too_large';
  if (status === 415) return 'unsupported_media_type';
  return error.code?.toLowerCase().replace(/^fst_err_/, '') ?? 'bad_request';
}

/** Fastify says only "Unsupported Media Type": say which type came and which ones would do. */
function unsupportedTypeMessage(type: string | undefined, accepts = ['application/json']): string {
  const given = type ? `Content-Type ${type.slice(0, 100)}` : 'a body without a Content-Type';
  const wanted = accepts.length > 1 ? `${accepts.slice(0, -1).join(', ')} or ${accepts.at(-1)}` : accepts[0];
  return `${given} is not accepted here; send ${wanted}`;
}
