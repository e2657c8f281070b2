import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { JobView } from '../../../src/jobs/job-schema.js';
import { resolveDatasetDir } from '../../../src/ml/data/dataset.js';
import { readIdxImages, readIdxLabels } from '../../../src/ml/data/idx.js';
import type { TrainParamsInput } from '../../../src/ml/train-params.js';
import { sleep } from '../../helpers/until.js';
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

const VERSION_FILES = ['metadata.json', 'model.json', 'weights.bin'];

/**
 * Looks at every numbered directory in the store, as a reader would see it at that moment.
 * Returns the versions seen and the ones that were not complete (a broken invariant).
 */
export function inspectStore(modelDir: string): { versions: number[]; partial: string[] } {
  let names: string[];
  try {
    names = readdirSync(modelDir);
  } catch {
    return { versions: [], partial: [] };
  }
  const versions: number[] = [];
  const partial: string[] = [];
  for (const name of names.filter((n) => /^[1-9][0-9]*$/.test(n))) {
    const missing = VERSION_FILES.filter((f) => !existsSync(join(modelDir, name, f)));
    if (missing.length) partial.push(`${name} (missing ${missing.join(', ')})`);
    else versions.push(Number(name));
  }
  return { versions: versions.sort((a, b) => a - b), partial };
}

/** Polls the store every `everyMs` until stopped; what it saw, including every partial version. */
export function watchStore(modelDir: string, everyMs = 10) {
  const partial = new Set<string>();
  const seen = new Set<number>();
  let looks = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const now = inspectStore(modelDir);
      looks++;
      now.partial.forEach((p) => partial.add(p));
      now.versions.forEach((v) => seen.add(v));
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { looks, partial: [...partial], seen: [...seen].sort((a, b) => a - b) };
    },
  };
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
