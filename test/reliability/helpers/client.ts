import { join } from 'node:path';
import {
  ApiError,
  createDigitClient,
  expectData,
  type Answer as ClientAnswer,
  type DigitClient,
} from '../../../clients/typescript/src/index.js';
import type { JobView } from '../../../src/jobs/job-schema.js';
import { resolveDatasetDir } from '../../../src/ml/data/dataset.js';
import { readIdxImages, readIdxLabels } from '../../../src/ml/data/idx.js';
import type { TrainParamsInput } from '../../../src/ml/train-params.js';
import { waitUntil } from './cluster.js';

/** A training job that takes a second or two: real MNIST, a small slice of it. */
export const TINY_JOB: TrainParamsInput = { epochs: 1, trainSize: 500, validationSize: 100 };

export interface Answer<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
  ms: number;
}

/** A request's deadline: a network error or timeout rejects. */
const TIMEOUT_MS = 10_000;

const clients = new Map<string, DigitClient>();

/** The typed client (clients/typescript) of the API at `api`, one per address. */
export function clientOf(api: string): DigitClient {
  let client = clients.get(api);
  if (!client) clients.set(api, (client = createDigitClient({ baseUrl: api })));
  return client;
}

/** The data of a 2xx answer; otherwise an error that says which request and what came back. */
async function dataOf<T>(what: string, answer: Promise<ClientAnswer<T>>): Promise<T> {
  try {
    return await expectData(answer);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    throw new Error(`${what}: ${error.status} ${JSON.stringify(error.body)}`, { cause: error });
  }
}

/**
 * Any request, as it is written, timed, with the status and whatever body came back: for bad
 * input, missing keys and limits, which the typed client is there to prevent. Well-formed calls
 * go through `clientOf`.
 */
export async function call<T = unknown>(
  url: string,
  init: { method?: string; json?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Answer<T>> {
  const started = performance.now();
  const response = await fetch(url, {
    method: init.method ?? (init.json === undefined ? 'GET' : 'POST'),
    headers: {
      ...(init.json === undefined ? {} : { 'content-type': 'application/json' }),
      ...init.headers,
    },
    ...(init.json === undefined ? {} : { body: JSON.stringify(init.json) }),
    signal: AbortSignal.timeout(init.timeoutMs ?? TIMEOUT_MS),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return {
    status: response.status,
    body: body as T,
    headers: response.headers,
    ms: performance.now() - started,
  };
}

export const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export function getJob(api: string, id: string): Promise<JobView> {
  return dataOf(
    `GET /jobs/${id}`,
    clientOf(api).GET('/jobs/{id}', { params: { path: { id } }, signal: AbortSignal.timeout(TIMEOUT_MS) }),
  );
}

export async function waitForJob(
  api: string,
  id: string,
  done: (view: JobView) => boolean = (v) => TERMINAL.has(v.state),
  timeoutMs = 120_000,
  everyMs = 100,
): Promise<JobView> {
  let last: JobView | undefined;
  try {
    return await waitUntil(
      `job ${id}`,
      async () => {
        last = await getJob(api, id).catch(() => last);
        return last && done(last) ? last : undefined;
      },
      timeoutMs,
      everyMs,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last seen: ${JSON.stringify(last)}`, { cause: error });
  }
}

export function postJob(
  api: string,
  params: TrainParamsInput = TINY_JOB,
  headers: Record<string, string> = {},
): Promise<JobView> {
  return dataOf(
    'POST /jobs',
    clientOf(api).POST('/jobs', { body: params, headers, signal: AbortSignal.timeout(TIMEOUT_MS) }),
  );
}

/** The first `count` MNIST test digits as 784 numbers in 0..1, with their labels. */
export async function testDigits(count: number): Promise<{ image: number[]; label: number }[]> {
  const dir = resolveDatasetDir('mnist');
  const images = await readIdxImages(join(dir, 't10k-images-idx3-ubyte'));
  const labels = await readIdxLabels(join(dir, 't10k-labels-idx1-ubyte'));
  const size = 28 * 28;
  return Array.from({ length: count }, (_, i) => ({
    image: Array.from(
      images.pixels.subarray(i * size, (i + 1) * size),
      (v) => Math.round((v / 255) * 1000) / 1000,
    ),
    label: labels.labels[i]!,
  }));
}

/** Waits until the API says it serves `version` (GET /models). */
export async function waitForServing(api: string, version: number, timeoutMs = 30_000): Promise<void> {
  await waitUntil(
    `${api} to serve version ${version}`,
    async () => {
      const models = await clientOf(api)
        .GET('/models', { signal: AbortSignal.timeout(TIMEOUT_MS) })
        .catch(() => null);
      return models?.data?.serving === version ? true : undefined;
    },
    timeoutMs,
  );
}
