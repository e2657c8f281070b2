import http from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { ERROR_CODES, errorBody, type ErrorCode } from '../error-codes.js';

/**
 * The errors Fastify answers before any route or error handler runs (a URL that does not decode,
 * a request line or headers Node cannot parse), in the same `{ error: { code, message } }` shape
 * as every other answer, so clients need one way to read errors.
 */
export const frameworkErrorOptions: Pick<
  FastifyServerOptions,
  'frameworkErrors' | 'clientErrorHandler' | 'routerOptions'
> = {
  frameworkErrors: (error: Error, _request: FastifyRequest, reply: FastifyReply) =>
    reply.status(400).send(errorBody('bad_request', error.message)),
  clientErrorHandler,
  // Longer than any id or alias we accept, so an over-long one gets our 400 or 404, not a 414.
  routerOptions: { maxParamLength: 256 },
};

function clientErrorHandler(error: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection has nobody left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [code, message]: [ErrorCode, string] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? ['request_timeout', 'the request was not received in time']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? ['headers_too_large', 'the request headers are over the size limit']
        : ['bad_request', 'the request is not valid HTTP'];
  const { status } = ERROR_CODES[code];
  const body = JSON.stringify(errorBody(code, message));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
