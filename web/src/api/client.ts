import {
  ApiError,
  createDigitClient,
  expectData,
  type Answer,
  type DigitClient,
} from '../../../clients/typescript/src/index.js';
import { askApiKey, forgetApiKey, storedApiKey } from './api-key.js';

export { ApiError, rawBody } from '../../../clients/typescript/src/index.js';

/** The typed client of the API (clients/typescript), same origin, with the key the person gave. */
const client = createDigitClient({ apiKey: storedApiKey });

export interface CallOptions {
  /**
   * On a 401, ask for the API key (@default true). False for what the page only reads on its way
   * (the data sets for a select): a dialog nobody asked for is worse than a shorter list.
   */
  askKey?: boolean;
}

/**
 * One request through the typed client: the answer's data, or an ApiError with its status and
 * `{ error: { code, message, details } }`. A 401 asks for the API key and sends the request again
 * with it; a key the service refuses is forgotten, so the next try asks again.
 * `await apiCall((api) => api.GET('/models'))`
 */
export async function apiCall<T>(
  send: (api: DigitClient) => Promise<Answer<T>>,
  options: CallOptions = {},
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const key = storedApiKey();
    try {
      return await expectData(send(client));
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401 || attempt >= 2 || options.askKey === false)
        throw error;
      if (key) forgetApiKey();
      const given = await askApiKey(
        key ? 'The service did not accept that key. Try again:' : "This action needs the service's API key.",
      );
      if (!given) throw error;
    }
  }
}

/**
 * The API's OpenAPI document, read live so the train form is built from what the service
 * running now accepts. It is not a route of its own document, so not one the typed client knows.
 */
export async function serviceDocument(): Promise<unknown> {
  const response = await fetch('/openapi.json', { headers: { accept: 'application/json' } });
  if (!response.ok) throw new ApiError(response.status, null, response);
  return response.json();
}
