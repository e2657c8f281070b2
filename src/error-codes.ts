import { z } from 'zod';

interface ErrorCodeInfo {
  /** The HTTP status every answer with this code has. */
  status: number;
  /** When a client gets it, as docs/api.md shows it (markdown). */
  when: string;
}

/**
 * Every `error.code` a client can get, with its status: the one list that types DomainError and
 * the error answers (a code not here does not compile), lists the codes in /openapi.json, and is
 * the table in docs/api.md (`npm run docs:errors`; test/docs/error-codes-doc.test.ts checks it).
 * Ordered by status, as the table shows them.
 */
export const ERROR_CODES = {
  invalid_request: {
    status: 400,
    when: 'a body, query or path parameter the route does not take; the message and `details` name each field',
  },
  invalid_json: {
    status: 400,
    when: 'a body sent as `application/json` that is not JSON (or has a `__proto__` or `constructor.prototype` key)',
  },
  empty_body: { status: 400, when: 'a `Content-Type: application/json` request with an empty body' },
  bad_request: {
    status: 400,
    when:
      'a request that is not valid HTTP: a URL that does not decode, a request line or headers Node ' +
      'cannot parse, a body that ends before its `Content-Length`',
  },
  invalid_image: {
    status: 400,
    when: 'an image in `/predict` or `/feedback` that cannot be read as a PNG or JPEG (or as base64 of one)',
  },
  out_of_range: {
    status: 400,
    when: 'a pixel outside `0..1` (`scale: "unit"`) or `0..255` (`scale: "byte"`); the message names it',
  },
  batch_too_large: {
    status: 400,
    when: 'more images in one `/predict` than `PREDICT_MAX_IMAGES`, or PNG/JPEG ones than `PREDICT_MAX_ENCODED_IMAGES`',
  },
  unknown_class: {
    status: 400,
    when:
      'a feedback `label` or `predicted` that is not a class of the version it is checked against; the ' +
      'message lists them',
  },
  invalid_archive: { status: 400, when: 'a dataset upload that is not a zip, or a corrupt or truncated one' },
  unsafe_archive: {
    status: 400,
    when: 'a zip built to attack its reader: paths out of the archive, symlinks, bombs, lying sizes',
  },
  invalid_dataset: {
    status: 400,
    when: 'a readable upload that is no dataset: its layout, classes or labels, too many bad images',
  },
  invalid_csv: { status: 400, when: 'a CSV upload not in the Kaggle digit-recognizer layout' },
  upload_incomplete: {
    status: 400,
    when: 'an upload whose body ended early (the client went away or cut it)',
  },
  unauthorized: {
    status: 401,
    when: 'the route needs the API key and it is missing or wrong (with `WWW-Authenticate: Bearer`)',
  },
  forbidden_host: {
    status: 403,
    when:
      'without `API_KEY`, an admin route (or `POST /feedback`) addressed to a `Host` other than ' +
      '`localhost`, `127.0.0.1` or `[::1]`',
  },
  read_only: { status: 403, when: 'deleting a built-in dataset or `feedback`' },
  forbidden_path: {
    status: 403,
    when: "a path to the web page's files with `.`, `..` or empty segments",
  },
  not_found: {
    status: 404,
    when: 'an unknown job, dataset, model version, alias, image index, feedback example or route',
  },
  request_timeout: {
    status: 408,
    when: 'the request took longer than `HTTP_REQUEST_TIMEOUT_MS` (its headers, `HTTP_HEADERS_TIMEOUT_MS`) to arrive',
  },
  conflict: {
    status: 409,
    when:
      'a cancel of a job that has finished; deleting a model version an alias names; an ' +
      '`Idempotency-Key` sent again with other parameters',
  },
  idempotency_in_progress: {
    status: 409,
    when: 'an `Idempotency-Key` whose first request is still creating its job (with `Retry-After`)',
  },
  in_use: {
    status: 409,
    when: 'deleting a dataset or model version a queued or active job needs; `details.jobs` lists them',
  },
  dataset_deleted: {
    status: 409,
    when: 'a dataset deleted while a `POST /jobs` naming it was creating its job',
  },
  feedback_conflict: { status: 409, when: 'a correction of an image stored already with another class' },
  feedback_full: { status: 409, when: '`FEEDBACK_MAX_EXAMPLES` corrections stored already' },
  precondition_failed: {
    status: 412,
    when: 'a web page file asked for with an `If-Match` or `If-Unmodified-Since` it does not meet',
  },
  payload_too_large: {
    status: 413,
    when: 'a body over `BODY_LIMIT_BYTES` (`PREDICT_BODY_LIMIT_BYTES` on `/predict` and `POST /feedback`)',
  },
  dataset_too_large: {
    status: 413,
    when: 'an upload over `DATASET_MAX_BYTES`, `DATASET_MAX_UNCOMPRESSED_BYTES` or `DATASET_MAX_FILES`',
  },
  unsupported_media_type: {
    status: 415,
    when:
      'a body of a type the route does not take (`text/plain` included), or a body on a route that ' +
      'takes none; the message names the types it takes',
  },
  range_not_satisfiable: { status: 416, when: "a `Range` outside a web page file's bytes" },
  rate_limited: {
    status: 429,
    when: 'over `RATE_LIMIT_PER_MINUTE` (or the `/predict` or feedback limit), with `Retry-After`',
  },
  queue_full: { status: 429, when: '`JOB_MAX_WAITING` jobs waiting already (with `Retry-After`)' },
  too_many_streams: {
    status: 429,
    when: 'over `EVENT_STREAMS_PER_CLIENT` job event streams from this client, or `EVENT_STREAMS_MAX` in all',
  },
  headers_too_large: { status: 431, when: "request headers over Node's size limit" },
  internal: {
    status: 500,
    when: 'a fault on the server: the message points to its logs and carries no internals',
  },
  no_model: { status: 503, when: 'no model trained yet' },
  overloaded: {
    status: 503,
    when: 'the image decoders, or the line of dataset uploads, are full (with `Retry-After`)',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The status of answers with code `C`: DomainError takes no other with it. */
export type ErrorStatus<C extends ErrorCode = ErrorCode> = (typeof ERROR_CODES)[C]['status'];

export const errorCodeSchema = z
  .enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]])
  .describe('What went wrong, for programs to act on; docs/api.md#errors says when each is sent');

/** The JSON body of every error answer. */
export function errorBody(code: ErrorCode, message: string, details?: unknown) {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}
