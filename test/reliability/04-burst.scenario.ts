import { afterAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/jobs/job-schema.js';
import type { TrainParamsInput } from '../../src/ml/train-params.js';
import { call, getJob, TERMINAL } from './helpers/client.js';
import { Cluster, waitUntil } from './helpers/cluster.js';
import { figures, fmt } from './helpers/figures.js';
import { inMode, MODE } from './helpers/mode.js';
import { watchStore } from './helpers/store-view.js';

const SCENARIO = '4 burst';
const JOBS = 300;
const WORKERS = 2;
/**
 * CI trains until this many jobs have completed (one per worker, as many as train at once), then
 * cancels the rest, queued or training; soak trains every job. A count, not a time budget: on a
 * busy machine a budget may end before any job has published, and the checks on versions would
 * check nothing.
 */
const TRAIN_FIRST = inMode(WORKERS, JOBS);
/** The smallest real training: 100 MNIST images, one epoch, no validation split. */
const SMALL: TrainParamsInput = { epochs: 1, trainSize: 100, batchSize: 32, validationSize: 0 };

describe(SCENARIO, () => {
  let cluster: Cluster;
  afterAll(() => cluster?.close());

  it(`when ${JOBS} jobs are posted at once (each key twice) to ${WORKERS} workers, then there are exactly ${JOBS} jobs, all end, with distinct complete versions`, async ({
    task,
  }) => {
    const record = figures(task, SCENARIO);
    cluster = await Cluster.start('04-burst');
    const api = await cluster.startApi();
    const workers = Array.from({ length: WORKERS }, () => cluster.startWorker());
    await Promise.all(workers.map((w) => w.ready));
    const store = watchStore(cluster.store, 20);

    // Every key sent twice in the same instant: a client retrying before the first answer came.
    const keys = Array.from({ length: JOBS }, (_, i) => `burst-${i}`);
    const started = performance.now();
    const burst = await Promise.all(
      keys
        .flatMap((key) => [key, key])
        .map((key) =>
          call<JobView>(`${api.url}/jobs`, {
            json: SMALL,
            headers: { 'idempotency-key': key },
            timeoutMs: 60_000,
          }),
        ),
    );
    const burstMs = performance.now() - started;
    const latencies = burst.map((a) => a.ms).sort((a, b) => a - b);
    const statuses = countBy(burst.map((a) => String(a.status)));
    const idOf = new Map<string, string>();
    const disagreeing: string[] = [];
    let doubleCreated = 0;
    keys.forEach((key, i) => {
      const [a, b] = [burst[2 * i]!, burst[2 * i + 1]!];
      if (a.body.id !== b.body.id) disagreeing.push(key);
      if (a.status === 202 && b.status === 202) doubleCreated++;
      idOf.set(key, a.body.id);
    });
    const ids = new Set(idOf.values());

    // Retries after the fact: the same jobs, answered 200.
    const retries = await Promise.all(
      keys.map((key) =>
        call<JobView>(`${api.url}/jobs`, { json: SMALL, headers: { 'idempotency-key': key } }),
      ),
    );
    const retriedSame = retries.filter((r, i) => r.status === 200 && r.body.id === idOf.get(keys[i]!)).length;
    const listed = await call<{ total: number }>(`${api.url}/jobs?limit=1`);

    // Train, then (CI) cancel whatever is still waiting or training: every job must still end.
    const trainStart = Date.now();
    await waitUntil(
      `the workers to train ${TRAIN_FIRST} jobs`,
      async () => {
        const counts = await countTerminal(api.url);
        return counts.completed >= TRAIN_FIRST || counts.terminal === ids.size ? true : undefined;
      },
      30 * 60_000,
      250,
    );
    const trainedInBudget = (await countTerminal(api.url)).completed;
    const trainMs = Date.now() - trainStart;
    const cancels = await Promise.all(
      [...ids].map((id) =>
        call(`${api.url}/jobs/${id}`, { method: 'DELETE' }).then((a) => ({ id, status: a.status })),
      ),
    );
    await waitUntil(
      'every job to end',
      async () => ((await countTerminal(api.url)).terminal === ids.size ? true : undefined),
      120_000,
      500,
    );
    const finals = await Promise.all([...ids].map((id) => getJob(api.url, id)));
    const seen = await store.stop();
    const states = countBy(finals.map((f) => f.state));
    const completed = finals.filter((f) => f.state === 'completed');
    const versions = completed.map((f) => f.result!.modelVersion);
    const onDisk = await cluster.store.inspect();
    const metadataMatches = await Promise.all(
      completed.map(async (f) => {
        const m = await call<{ jobId: string }>(`${api.url}/models/${f.result!.modelVersion}`);
        return m.status === 200 && m.body.jobId === f.id;
      }),
    );

    record(
      'concurrent POST /jobs (300 keys, each twice)',
      `${burst.length} in ${fmt.ms(burstMs)}; p50 ${fmt.ms(q(latencies, 0.5))}, p99 ${fmt.ms(q(latencies, 0.99))}; ${Object.entries(
        statuses,
      )
        .map(([s, n]) => `${s}: ${n}`)
        .join(', ')}`,
      burst.every((a) => a.status === 202 || a.status === 200),
    );
    record(
      'distinct jobs created',
      `${ids.size} (GET /jobs total ${listed.body.total})`,
      ids.size === JOBS && listed.body.total === JOBS,
    );
    record(
      'both answers for a key name the same job',
      `${JOBS - disagreeing.length} of ${JOBS}`,
      disagreeing.length === 0,
    );
    record('keys answered 202 (created) twice', doubleCreated, doubleCreated === 0);
    record('later retries: 200 with the same job', `${retriedSame} of ${JOBS}`, retriedSame === JOBS);
    record(
      MODE === 'soak'
        ? 'trained by 2 workers'
        : `trained by 2 workers before the rest is cancelled (CI: ${TRAIN_FIRST}; soak trains all ${JOBS})`,
      `${trainedInBudget} in ${fmt.s(trainMs)} (${((trainedInBudget / trainMs) * 60_000).toFixed(0)} jobs/min)`,
    );
    record(
      'DELETE answers',
      Object.entries(countBy(cancels.map((c) => String(c.status))))
        .map(([s, n]) => `${s}: ${n}`)
        .join(', '),
    );
    const cancelIgnored = cancels.filter(
      (c) => c.status === 202 && finals.find((f) => f.id === c.id)?.state !== 'cancelled',
    );
    record(
      'DELETE answered 202, yet the job did not end cancelled',
      cancelIgnored.length,
      cancelIgnored.length === 0,
    );
    record(
      'final states',
      Object.entries(states)
        .map(([s, n]) => `${s}: ${n}`)
        .join(', '),
      finals.every((f) => TERMINAL.has(f.state)),
    );
    record(
      'versions: distinct / complete on disk / metadata names the job',
      `${new Set(versions).size} of ${versions.length} / ${versions.filter((v) => onDisk.versions.includes(v)).length} / ${metadataMatches.filter(Boolean).length}`,
      new Set(versions).size === versions.length &&
        versions.every((v) => onDisk.versions.includes(v)) &&
        metadataMatches.every(Boolean) &&
        onDisk.versions.length === versions.length,
    );
    record(
      'partial version dirs seen',
      `${seen.partial.length} in ${fmt.int(seen.looks)} looks`,
      seen.partial.length === 0,
    );

    expect(burst.filter((a) => a.status !== 202 && a.status !== 200).map((a) => a.status)).toEqual([]);
    expect(ids.size).toBe(JOBS);
    expect(listed.body.total).toBe(JOBS);
    expect(disagreeing).toEqual([]);
    expect(retriedSame).toBe(JOBS);
    expect(finals.filter((f) => !TERMINAL.has(f.state))).toEqual([]);
    expect(finals.filter((f) => f.state === 'failed').map((f) => f.error)).toEqual([]);
    expect(new Set(versions).size).toBe(versions.length);
    expect(onDisk.versions.sort((a, b) => a - b)).toEqual([...versions].sort((a, b) => a - b));
    expect(metadataMatches.every(Boolean)).toBe(true);
    expect(seen.partial).toEqual([]);
    expect(completed.length).toBeGreaterThanOrEqual(TRAIN_FIRST);
    expect(doubleCreated).toBe(0);
    expect(cancelIgnored.map((c) => c.id)).toEqual([]);
  });
});

async function countTerminal(api: string): Promise<{ terminal: number; completed: number }> {
  const counts = { terminal: 0, completed: 0 };
  for (const state of ['completed', 'failed', 'cancelled'] as const) {
    const page = await call<{ total: number; jobs: { id: string }[] }>(`${api}/jobs?state=${state}&limit=1`);
    counts.terminal += page.body.total;
    if (state === 'completed') counts.completed = page.body.total;
  }
  return counts;
}

function q(sorted: number[], quantile: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(quantile * sorted.length))] ?? 0;
}

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values.sort()) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}
