import type { ErrorBody } from '../logic/form-errors.js';
import { askApiKey, forgetApiKey, storedApiKey } from './api-key.js';

/** An answer other than 2xx, with the API's `{ error: { code, message, details } }` when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: Partial<ErrorBody> | null,
  ) {
    super(body?.error?.message ?? `the service answered ${status}`);
    this.name = 'ApiError';
  }

  get code(): string | undefined {
    return this.body?.error?.code;
  }
}

export interface RequestOptions {
  method?: string;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as is, with its own content type (a PNG from the canvas). */
  blob?: Blob;
  /**
   * On a 401, ask for the API key (@default true). False for what the page only reads on its way
   * (the data sets for a select): a dialog nobody asked for is worse than a shorter list.
   */
  askKey?: boolean;
}

/**
 * One request to the API, same origin. A 401 asks for the API key and tries again with it; a
 * key the service refuses is forgotten, so the next try asks again.
 */
export async function apiRequest<T>(path: string, options: RequestOptions = {}): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = { accept: 'application/json' };
    const key = storedApiKey();
    if (key) headers.authorization = `Bearer ${key}`;
    let body: BodyInit | undefined;
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    } else if (options.blob) {
      headers['content-type'] = options.blob.type;
      body = options.blob;
    }
    const response = await fetch(path, { method: options.method ?? 'GET', headers, body });
    const parsed = await readBody(response);
    if (response.ok) return parsed as T;
    const error = new ApiError(response.status, parsed as Partial<ErrorBody> | null);
    if (response.status !== 401 || attempt >= 2 || options.askKey === false) throw error;
    if (key) forgetApiKey();
    const given = await askApiKey(
      key ? 'The service did not accept that key. Try again:' : "This action needs the service's API key.",
    );
    if (!given) throw error;
  }
}

async function readBody(response: Response): Promise<unknown> {
  if (response.status === 204) return null;
  const text = await response.text();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}
