import type { ErrorCode, ErrorStatus } from './error-codes.js';

export interface DomainErrorOptions<C extends ErrorCode = ErrorCode> {
  /** The HTTP status the API answers with: the one src/error-codes.ts gives the code. */
  status: ErrorStatus<C>;
  /** Machine-readable, for clients to act on: `error.code` of the answer, one of src/error-codes.ts. */
  code: C;
  /** What exactly is wrong (e.g. `[{ field, message }]`): `error.details` of the answer. */
  details?: unknown;
  /** When the client may try again, sent as Retry-After. */
  retryAfterSeconds?: number;
  cause?: unknown;
}

/**
 * A failure the client can be told about: the one error handler (src/api/error-handler.ts)
 * answers it as `{ error: { code, message, details? } }` with its status, whatever layer threw it.
 */
export class DomainError<C extends ErrorCode = ErrorCode> extends Error {
  override name = 'DomainError';
  readonly status: ErrorStatus<C>;
  readonly code: C;
  readonly details: unknown;
  readonly retryAfterSeconds: number | undefined;

  constructor(message: string, options: DomainErrorOptions<C>) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
    this.code = options.code;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export const notFound = (what: string) =>
  new DomainError(`${what} not found`, { status: 404, code: 'not_found' });

/** A 400 about one field of the request, in the shape schema validation gives. */
export const invalidField = (field: string, message: string) =>
  new DomainError(message, { status: 400, code: 'invalid_request', details: [{ field, message }] });
