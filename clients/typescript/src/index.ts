import createClient, {
  type Client,
  type ClientOptions,
  type ClientPathsWithMethod,
  type MethodResponse,
  type Middleware,
} from 'openapi-fetch';
import type { paths } from './schema.js';

export type { components, operations, paths } from './schema.js';
export type { Client, Middleware } from 'openapi-fetch';

/** A client of the whole service: `GET`, `POST`, `PUT`, `DELETE` on its paths, typed from its OpenAPI document. */
export type DigitClient = Client<paths>;

/** An API key, or a function that gives the one to send now (none: send none). */
export type ApiKeySource = string | (() => string | null | undefined | Promise<string | null | undefined>);

export interface DigitClientOptions {
  /**
   * Where the service answers, such as `http://127.0.0.1:3000`. @default '' (the page's own origin,
   * for a page the service serves; in Node give a whole URL)
   */
  baseUrl?: string;
  /**
   * Sent as `Authorization: Bearer <key>` with every request. A function is asked before each
   * request, for a key that can change while the client lives (one typed in a browser).
   * @default none
   */
  apiKey?: ApiKeySource;
  /** The fetch to send requests with. @default globalThis.fetch */
  fetch?: ClientOptions['fetch'];
}

/**
 * A typed client of the service (openapi-fetch): each call answers `{ data, error, response }`,
 * with `data` the 2xx body and `error` the error body (`{ error: { code, message, details? } }`)
 * as the OpenAPI document describes them. `expectData` turns that into a value or an ApiError.
 */
export function createDigitClient(options: DigitClientOptions = {}): DigitClient {
  const client = createClient<paths>({
    baseUrl: options.baseUrl ?? '',
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  if (options.apiKey !== undefined) client.use(apiKeyMiddleware(options.apiKey));
  return client;
}

/** Adds `Authorization: Bearer <key>` to each request that has a key and no Authorization of its own. */
export function apiKeyMiddleware(source: ApiKeySource): Middleware {
  return {
    async onRequest({ request }) {
      const key = typeof source === 'function' ? await source() : source;
      if (key && !request.headers.has('authorization')) request.headers.set('authorization', `Bearer ${key}`);
      return request;
    },
  };
}

/** The body of every 4xx and 5xx answer the service sends: a machine-readable code and a message. */
export type ErrorBody = paths['/jobs/{id}']['get']['responses'][404]['content']['application/json'];

/** The JSON a path answers with on success: `SuccessBody<'get', '/models'>`. */
export type SuccessBody<
  Method extends 'get' | 'put' | 'post' | 'delete',
  Path extends ClientPathsWithMethod<DigitClient, Method>,
> = MethodResponse<DigitClient, Method, Path>;

/** An answer other than 2xx, with the service's error body when it sent one (a proxy may not). */
export class ApiError extends Error {
  override name = 'ApiError';

  constructor(
    readonly status: number,
    /** The parsed `{ error: { code, message, details? } }`, or null when the body was something else. */
    readonly body: ErrorBody | null,
    readonly response?: Response,
  ) {
    super(body ? body.error.message : `the service answered ${status}`);
  }

  /** The machine-readable code (`not_found`, `invalid_request`, …), when the body had one. */
  get code(): string | undefined {
    return this.body?.error.code;
  }
}

/** True when `body` has the service's error shape. */
export function isErrorBody(body: unknown): body is ErrorBody {
  if (typeof body !== 'object' || body === null || !('error' in body)) return false;
  const { error } = body as { error: unknown };
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { code?: unknown }).code === 'string' &&
    typeof (error as { message?: unknown }).message === 'string'
  );
}

/** What a client call resolves to, as far as `expectData` reads it. */
export interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/**
 * The data of a 2xx answer, or an ApiError with the status and error body of any other:
 * `const models = await expectData(client.GET('/models'))`.
 */
export async function expectData<T>(answer: Answer<T> | Promise<Answer<T>>): Promise<T> {
  const { data, error, response } = await answer;
  if (response.ok) return data as T;
  throw new ApiError(response.status, isErrorBody(error) ? error : null, response);
}

/**
 * A request body sent as it is, with its own content type, for routes that take bytes rather than
 * JSON: `POST /predict` with a PNG or JPEG, `POST /datasets` with a zip or CSV.
 * `client.POST('/predict', { ...rawBody(png, 'image/png') })`
 */
export function rawBody(bytes: Blob | ArrayBuffer | Uint8Array | string, contentType: string) {
  return {
    // openapi-typescript types a binary body as a string; these bytes go out untouched.
    body: bytes as never,
    bodySerializer: (body: unknown) => body,
    headers: { 'content-type': contentType },
  };
}
