import { join } from 'node:path';
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

/** JSON over HTTP with a deadline; a network error or timeout rejects. */
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
    signal: AbortSignal.timeout(init.timeoutMs ?? 10_000),
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

export async function getJob(api: string, id: string): Promise<JobView> {
  const answer = await call<JobView>(`${api}/jobs/${id}`);
  if (answer.status !== 200)
    throw new Error(`GET /jobs/${id}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
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

export async function postJob(
  api: string,
  params: TrainParamsInput = TINY_JOB,
  headers: Record<string, string> = {},
): Promise<JobView> {
  const answer = await call<JobView>(`${api}/jobs`, { json: params, headers });
  if (answer.status !== 202 && answer.status !== 200)
    throw new Error(`POST /jobs: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
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
      const models = await call<{ serving: number | null }>(`${api}/models`).catch(() => null);
      return models?.body.serving === version ? true : undefined;
    },
    timeoutMs,
  );
}
