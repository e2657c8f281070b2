import type { FastifyHttpOptions } from 'fastify';
import type http from 'node:http';

export interface ConnectionLimits {
  /** Longest a client may take to send a whole request, headers and body; then 408. */
  requestTimeoutMs: number;
  /** Longest a client may take to send the headers; then 408. Longer counts as requestTimeoutMs. */
  headersTimeoutMs: number;
  /** A connection with no traffic either way for this long is closed. */
  idleTimeoutMs: number;
  /** Open connections the server takes; one more is closed as soon as it is accepted. */
  maxConnections: number;
}

/**
 * The server options that bound slow and idle connections (issue 12: Fastify's requestTimeout is
 * 0 by default, so a body trickled a byte at a time would hold its connection and buffer forever).
 * Timed-out requests get the 408 of framework-errors.ts. The connection cap is set on the server
 * once built (`server.maxConnections`).
 */
export function connectionLimitOptions(
  limits: ConnectionLimits,
): Pick<FastifyHttpOptions<http.Server>, 'requestTimeout' | 'connectionTimeout' | 'http'> {
  // Node refuses a headers timeout over the request timeout, which would fire first anyway.
  const headersTimeout = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  return {
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    http: {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout,
      // Node looks for late requests this often; its 30 s default would let a 10 s limit run to 40 s.
      connectionsCheckingInterval: Math.min(1000, Math.ceil(headersTimeout / 2)),
    },
  };
}
