import { afterAll, describe, expect, it } from 'vitest';
import { sleep } from '../helpers/until.js';
import { call, postJob, testDigits, TINY_JOB, waitForJob, waitForServing } from './helpers/client.js';
import { Cluster, waitUntil } from './helpers/cluster.js';
import { figures, fmt } from './helpers/figures.js';
import { inMode } from './helpers/mode.js';

const SCENARIO = '3 Redis restarted';
/**
 * Redis stays away until the API has shown what it does without it (/readyz 503, /predict
 * answered by name and by alias), and in soak mode for at least this long.
 */
const MIN_DOWN_MS = inMode(0, 15_000);
/** /predict answers, by alias among them, that must come while Redis is away. */
const ANSWERED_WHILE_DOWN = { all: 40, alias: 10 };
const PREDICT_CLIENTS = 8;
/** Timing bars: a /predict during the outage, and /readyz back after the restart. */
const PREDICT_MAX_MS = 1000;
const READY_AGAIN_MS = 5000;

interface Sample {
  at: number;
  status: number | null;
  ms: number;
  version?: number;
  /** Asked by alias (`?version=production`), which must not wait on Redis either. */
  alias?: boolean;
}

describe(SCENARIO, () => {
  let cluster: Cluster;
  afterAll(() => cluster?.close());

  it('when Redis crashes and comes back during training and predict load, then /predict keeps answering, /readyz says so, and no accepted job is lost', async ({
    task,
  }) => {
    const record = figures(task, SCENARIO);
    cluster = await Cluster.start('03-redis-restart');
    // Limits on, so each request also counts itself in Redis: while Redis is away the checks
    // must let requests through rather than hold them.
    const api = await cluster.startApi({
      RATE_LIMIT_PER_MINUTE: '1000000',
      PREDICT_RATE_LIMIT_PER_MINUTE: '1000000',
    });
    const worker = cluster.startWorker();
    const v1 = await waitForJob(api.url, (await postJob(api.url)).id);
    expect(v1.state).toBe('completed');
    await waitForServing(api.url, v1.result!.modelVersion);
    const aliased = await call(`${api.url}/models/aliases/production`, {
      method: 'PUT',
      json: { version: v1.result!.modelVersion },
    });
    expect(aliased.status).toBe(200);

    const digits = await testDigits(10);
    const predictions: Sample[] = [];
    const readiness: Sample[] = [];
    let loading = true;
    const load = Promise.all(
      Array.from({ length: PREDICT_CLIENTS }, async (_, c) => {
        // Every fourth client asks by alias.
        const alias = c % 4 === 0;
        for (let i = c; loading; i++) {
          const at = Date.now();
          const answer = await call<{ modelVersion: number }>(
            `${api.url}/predict${alias ? '?version=production' : ''}`,
            {
              json: { image: digits[i % digits.length]!.image },
              timeoutMs: 30_000,
            },
          ).catch(() => null);
          predictions.push({
            at,
            status: answer?.status ?? null,
            ms: Date.now() - at,
            version: answer?.body.modelVersion,
            alias,
          });
        }
      }),
    );
    const probing = (async () => {
      while (loading) {
        const at = Date.now();
        const answer = await call(`${api.url}/readyz`, { timeoutMs: 5_000 }).catch(() => null);
        readiness.push({ at, status: answer?.status ?? null, ms: Date.now() - at });
        await sleep(100);
      }
    })();

    // A training job well under way, and one accepted just before the crash.
    const training = await postJob(api.url, {
      epochs: 3,
      trainSize: inMode(3_000, 12_000),
      validationSize: 500,
    });
    await waitForJob(
      api.url,
      training.id,
      (v) => v.history.length === 1 && (v.progress?.batch ?? 0) > 5,
      120_000,
      50,
    );
    const justBefore = await postJob(api.url, TINY_JOB);
    await cluster.redis.stop('SIGKILL');
    const downAt = Date.now();
    // A job sent while Redis is away: it must either be refused or, if accepted, be kept.
    const during = call<{ id: string }>(`${api.url}/jobs`, {
      json: TINY_JOB,
      timeoutMs: MIN_DOWN_MS + 60_000,
    }).catch((e: Error) => ({ status: null, body: { id: '' }, error: e.message }));
    // Waited for, not slept: on a busy machine a fixed outage may end before the API has noticed.
    await waitUntil(
      `/readyz 503 and ${ANSWERED_WHILE_DOWN.all} /predict answers (${ANSWERED_WHILE_DOWN.alias} by alias) while Redis is away`,
      () => {
        const answered = predictions.filter((p) => p.at >= downAt && p.status === 200);
        return readiness.some((r) => r.at >= downAt && r.status === 503) &&
          answered.length >= ANSWERED_WHILE_DOWN.all &&
          answered.filter((p) => p.alias).length >= ANSWERED_WHILE_DOWN.alias
          ? true
          : undefined;
      },
      60_000,
    ).catch(() => undefined); // the checks below say what did not come
    if (MIN_DOWN_MS > 0) await sleep(Math.max(0, downAt + MIN_DOWN_MS - Date.now()));
    await cluster.redis.start();
    const upAt = Date.now();
    const readyAgain = await waitForReady(api.url);
    const duringAnswer = await during;
    const accepted = [training.id, justBefore.id];
    if (duringAnswer.status === 202 || duringAnswer.status === 200) accepted.push(duringAnswer.body.id);
    const finals = await Promise.all(accepted.map((id) => waitForJob(api.url, id, undefined, 180_000)));
    loading = false;
    await Promise.all([load, probing]);

    // Requests in flight at any moment of the outage, and those answered before Redis was back.
    const outage = predictions.filter((p) => p.at < upAt && p.at + p.ms > downAt);
    const answeredDuring = outage.filter((p) => p.status === 200 && p.at + p.ms < upAt);
    const outageFailed = outage.filter((p) => p.status !== 200);
    const allFailed = predictions.filter((p) => p.status !== 200);
    const latencies = outage.map((p) => p.ms).sort((a, b) => a - b);
    const aliasOutage = outage.filter((p) => p.alias);
    const aliasFailed = aliasOutage.filter((p) => p.status !== 200);
    const aliasAnsweredDuring = aliasOutage.filter((p) => p.status === 200 && p.at + p.ms < upAt);
    const aliasMax = Math.max(0, ...aliasOutage.map((p) => p.ms));
    const firstUnready = readiness.find((r) => r.at >= downAt && r.status === 503);
    const trainingFinal = finals[0]!;

    record('Redis down (SIGKILL, AOF fsync always), restarted after', fmt.ms(upAt - downAt));
    record(
      '/predict requests overlapping the outage: 200 (rate limits on)',
      `${outage.length - outageFailed.length} of ${outage.length} (${answeredDuring.length} answered before Redis was back)`,
      outageFailed.length === 0 && answeredDuring.length >= ANSWERED_WHILE_DOWN.all,
    );
    record.bar(
      '/predict overlapping the outage: p99 / max (the bar on max)',
      `${fmt.ms(quantile(latencies, 0.99))} / ${fmt.ms(latencies.at(-1) ?? 0)}`,
      latencies.at(-1) ?? 0,
      PREDICT_MAX_MS,
    );
    record(
      '/predict?version=<alias> overlapping the outage: 200',
      `${aliasOutage.length - aliasFailed.length} of ${aliasOutage.length} (${aliasAnsweredDuring.length} answered before Redis was back)`,
      aliasFailed.length === 0 && aliasAnsweredDuring.length >= ANSWERED_WHILE_DOWN.alias,
    );
    record.bar(
      '/predict?version=<alias> overlapping the outage: max',
      fmt.ms(aliasMax),
      aliasMax,
      PREDICT_MAX_MS,
    );
    record(
      '/predict failures over the whole run',
      `${allFailed.length} of ${predictions.length}`,
      allFailed.length === 0,
    );
    record(
      '/readyz: 503 after the crash within',
      firstUnready ? fmt.ms(firstUnready.at + firstUnready.ms - downAt) : 'never',
      firstUnready !== undefined,
    );
    record.bar(
      '/readyz: 200 again after the restart within',
      fmt.ms(readyAgain - upAt),
      readyAgain - upAt,
      READY_AGAIN_MS,
    );
    record(
      'training job across the outage',
      `${trainingFinal.state}, ${trainingFinal.attempts} attempt(s), epochs ${trainingFinal.history.map((h) => h.epoch).join(',')}`,
      trainingFinal.state === 'completed',
    );
    record(
      'POST /jobs while Redis is away',
      duringAnswer.status === null
        ? `no answer (${(duringAnswer as { error?: string }).error})`
        : `${duringAnswer.status} after the restart`,
    );
    const lost = finals.filter((f) => f.state !== 'completed');
    record(
      'accepted jobs completed',
      `${finals.length - lost.length} of ${accepted.length}`,
      lost.length === 0,
    );

    expect(outageFailed.map((p) => p.status)).toEqual([]);
    expect(answeredDuring.length).toBeGreaterThanOrEqual(ANSWERED_WHILE_DOWN.all);
    expect(aliasFailed.map((p) => p.status)).toEqual([]);
    expect(aliasAnsweredDuring.length).toBeGreaterThanOrEqual(ANSWERED_WHILE_DOWN.alias);
    expect(allFailed.map((p) => p.status)).toEqual([]);
    expect(firstUnready).toBeDefined();
    expect(trainingFinal.state).toBe('completed');
    expect(trainingFinal.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(lost.map((f) => `${f.id}: ${f.state} ${f.error}`)).toEqual([]);
    await worker.kill();
  });
});

async function waitForReady(api: string): Promise<number> {
  for (;;) {
    const answer = await call(`${api}/readyz`, { timeoutMs: 2_000 }).catch(() => null);
    if (answer?.status === 200) return Date.now();
    await sleep(50);
  }
}

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : 0;
}
