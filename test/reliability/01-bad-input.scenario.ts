import { writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRandom } from '../../src/ml/random.js';
import { sendRaw, type RawAnswer } from '../helpers/raw-http.js';
import { sleep } from '../helpers/until.js';
import {
  DATASET_MAX_BYTES,
  generators,
  makeImageFixtures,
  type BadRequest,
  type Random,
} from './helpers/bad-requests.js';
import { call, postJob, testDigits, waitForJob, waitForServing } from './helpers/client.js';
import { Cluster, collectGarbage, type ApiProcess } from './helpers/cluster.js';
import { figures, fmt } from './helpers/figures.js';
import { inMode } from './helpers/mode.js';

const SCENARIO = '1 bad input';
const ROUNDS = inMode(2, 5);
const PER_ROUND = 2_500;
const CONCURRENCY = 16;
const SETTLE_MS = 2_000;
/** Expensive inputs (16 MiB bodies, 16-megapixel images) are sent less often than the rest. */
const WEIGHTS: Record<string, number> = {
  'predict: oversized body': 0.1,
  'predict: giant images': 0.15,
  'jobs: oversized body': 0.3,
  'jobs: long strings': 0.5,
  'predict: long strings': 0.3,
  'predict: deep nesting': 0.5,
  'datasets: oversized body': 0.3,
  'feedback: oversized body': 0.1,
};
const OVERSIZED = new Set([
  'predict: oversized body',
  'jobs: oversized body',
  'datasets: oversized body',
  'feedback: oversized body',
]);

/** Every generator once, then weighted random picks: the same sequence for the same seed. */
function schedule(random: Random, count: number): string[] {
  const names = Object.keys(generators);
  const total = names.reduce((sum, n) => sum + (WEIGHTS[n] ?? 1), 0);
  const out = [...names];
  while (out.length < count) {
    let r = random() * total;
    out.push(names.find((n) => (r -= WEIGHTS[n] ?? 1) < 0) ?? names.at(-1)!);
  }
  return out;
}

interface Sent {
  name: string;
  request: BadRequest;
  answer: RawAnswer;
}

describe(SCENARIO, () => {
  let cluster: Cluster;
  afterAll(() => cluster?.close());

  it(`when ${ROUNDS * PER_ROUND} malformed requests hit every route, then none gets a 5xx and the API stays up`, async ({
    task,
  }) => {
    const record = figures(task, SCENARIO);
    cluster = await Cluster.start('01-bad-input');
    const api = await cluster.startApi({ DATASET_MAX_BYTES: String(DATASET_MAX_BYTES) }, { inspect: true });
    const worker = cluster.startWorker();
    const first = await postJob(api.url);
    const trained = await waitForJob(api.url, first.id);
    expect(trained.state).toBe('completed');
    const version = trained.result!.modelVersion;
    // Stopped so that jobs the flood manages to create stay queued instead of taking the CPU.
    await worker.kill('SIGTERM');
    await waitForServing(api.url, version);
    // An alias protects the served version from the DELETE /models/<n> the flood sends.
    const alias = await call(`${api.url}/models/aliases/production`, { method: 'PUT', json: { version } });
    expect(alias.status).toBe(200);

    const digits = await testDigits(20);
    const labels = async () =>
      Promise.all(
        digits.map(async (d) => {
          const answer = await call<{ predictions: { label: number }[] }>(`${api.url}/predict`, {
            json: { image: d.image },
          });
          return answer.status === 200 ? answer.body.predictions[0]!.label : -answer.status;
        }),
      );
    for (let i = 0; i < 5; i++) await labels();
    const labelsBefore = await labels();
    await sleep(1000);
    const memory = [{ after: 'start', ...(await memoryOf(api)) }];
    const serverBefore = await statusCounts(api.url);

    const images = await makeImageFixtures();
    const plan = schedule(createRandom(7), ROUNDS * PER_ROUND);
    const answers: Sent[] = [];
    let rssPeak = memory[0]!.rss;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, api.rss())), 200);
    const started = performance.now();
    for (let round = 0; round < ROUNDS; round++) {
      let next = round * PER_ROUND;
      const end = next + PER_ROUND;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < end) {
            const index = next++;
            const name = plan[index]!;
            // A source per request, so the same request is made whatever order the answers come in.
            const request = generators[name]!(createRandom(index), { jobId: first.id, version }, images);
            answers.push({ name, request, answer: await sendRaw(api.port, request.raw ?? request) });
          }
        }),
      );
      await sleep(SETTLE_MS);
      memory.push({ after: `round ${round + 1}`, ...(await memoryOf(api)) });
    }
    const seconds = (performance.now() - started) / 1000 - (ROUNDS * SETTLE_MS) / 1000;
    clearInterval(sampler);

    const serverAfter = await statusCounts(api.url);
    const server5xx = sumStatuses(serverAfter, serverBefore, (s) => s >= 500);
    const server413 = sumStatuses(serverAfter, serverBefore, (s) => s === 413);
    const serverErrors = answers.filter((a) => (a.answer.status ?? 0) >= 500);
    const unanswered = answers.filter((a) => a.answer.status === null);
    const oversized = answers.filter((a) => OVERSIZED.has(a.name));
    // An oversized upload's 413 can be lost to the client: the API answers as soon as it reads
    // the Content-Length, lingers, then closes, and a client still writing its megabytes on a
    // busy machine may get EPIPE or ECONNRESET before it reads the answer (who wins that race is
    // chance). So for those the verdict is the server's own count of 413s, and the answers the
    // client lost are a figure. Every other request must be answered.
    const unansweredOther = unanswered.filter((a) => !OVERSIZED.has(a.name));
    const unansweredOversized = unanswered.filter((a) => OVERSIZED.has(a.name));
    const oversizedNot413 = oversized.filter((a) => a.answer.status !== null && a.answer.status !== 413);
    // 413s the client saw for requests that were not oversized: not the oversized uploads' own.
    const other413 = answers.filter((a) => !OVERSIZED.has(a.name) && a.answer.status === 413).length;
    const oversized413 = server413 - other413;
    const malformed = (a: Sent) => a.name.startsWith('raw HTTP') || a.answer.body.includes('"Client Error"');
    const fourXX = answers.filter((a) => (a.answer.status ?? 0) >= 400 && (a.answer.status ?? 0) < 500);
    const apiFourXX = fourXX.filter((a) => !malformed(a));
    const unnamed = apiFourXX.filter((a) => !messageOf(a.answer.body));
    const enveloped = fourXX.filter((a) => messageOf(a.answer.body)?.enveloped);
    const alive = api.child.exitCode === null && (await call(`${api.url}/healthz`)).status === 200;
    const labelsAfter = await labels();
    // Every upload of the flood is refused: none may be listed, nor left half-written.
    const listed = await call<{ datasets: { builtIn: boolean }[] }>(`${api.url}/datasets`);
    const datasetsStored = listed.body.datasets.filter((d) => !d.builtIn).length;
    const stagingLeft = (await readdir(join(cluster.datasetDir, '.staging')).catch(() => [])).length;
    // Every POST /feedback of the flood is refused too: none may be stored.
    const feedback = await call<{ total: number }>(`${api.url}/feedback`);
    const sameLabels = labelsAfter.filter((l, i) => l === labelsBefore[i]).length;
    const errorLogLines = api
      .log()
      .split('\n')
      .filter((l) => /"level":(50|60)/.test(l)).length;
    writeFileSync(
      join(cluster.logDir, 'answers.json'),
      JSON.stringify(
        answers
          .filter(
            (a) => a.answer.status === null || a.answer.status >= 500 || !messageOf(a.answer.body)?.enveloped,
          )
          .map((a) => ({
            name: a.name,
            method: a.request.method,
            path: a.request.path.slice(0, 200),
            status: a.answer.status,
            error: a.answer.error,
            body: a.answer.body.slice(0, 300),
          })),
        null,
        1,
      ),
    );

    const byStatus = countBy(answers.map((a) => String(a.answer.status ?? 'none')));
    record(
      'malformed requests sent',
      `${fmt.int(answers.length)} in ${seconds.toFixed(1)} s (${ROUNDS} rounds), ${new Set(answers.map((a) => a.name)).size} kinds over every route`,
    );
    record(
      'answers by status',
      Object.entries(byStatus)
        .map(([s, n]) => `${s}: ${n}`)
        .join(', '),
    );
    record(
      '5xx answers (client view / server metrics)',
      `${serverErrors.length} / ${server5xx}`,
      serverErrors.length + server5xx === 0,
    );
    record(
      'requests with no answer, oversized uploads aside',
      `${unansweredOther.length} of ${answers.length - oversized.length}`,
      unansweredOther.length === 0,
    );
    record(
      'oversized uploads: 413 sent (server metrics) / the client read it / lost to EPIPE or reset',
      `${oversized413} of ${oversized.length} / ${oversized.length - unansweredOversized.length - oversizedNot413.length} / ${unansweredOversized.length}${oversizedNot413.length ? `; other answers: ${oversizedNot413.map((a) => a.answer.status).join(', ')}` : ''}`,
      oversized413 >= oversized.length && oversizedNot413.length === 0,
    );
    record(
      '4xx to HTTP requests that name the problem',
      `${apiFourXX.length - unnamed.length} of ${apiFourXX.length}`,
      unnamed.length === 0,
    );
    record(
      '4xx in the documented { error: { code, message } } shape',
      `${enveloped.length} of ${fourXX.length} (rest: router and HTTP-parser errors)`,
    );
    record('API alive afterwards, same process', alive ? 'yes' : 'no', alive);
    record(
      'datasets stored / left in staging by refused uploads',
      `${datasetsStored} / ${stagingLeft}`,
      datasetsStored + stagingLeft === 0,
    );
    record('feedback examples stored by refused corrections', feedback.body.total, feedback.body.total === 0);
    record(
      'same labels for 20 test digits before and after',
      `${sameLabels} of ${digits.length}`,
      sameLabels === digits.length,
    );
    record('error-level log lines', errorLogLines, errorLogLines === 0);
    record('API RSS peak', fmt.mib(rssPeak));
    for (const m of memory)
      record(
        `API memory after ${m.after} (+${SETTLE_MS / 1000} s, full GC): RSS / JS heap used`,
        `${fmt.mib(m.rss)} / ${fmt.mib(m.heap)}`,
      );
    // The first round grows native pools (the allocator's arenas, libvips' cache) that are kept
    // for reuse; a leak would grow with every round after it. Bar: the last round's RSS within
    // 25 % of the first's (a leak proportional to requests would double it over 5 rounds).
    const afterFirst = memory[1]!.rss;
    const last = memory.at(-1)!.rss;
    const growth = last - afterFirst;
    const rssBound = afterFirst * 1.25;
    record(
      `RSS after round ${ROUNDS} vs after round 1`,
      `${growth >= 0 ? '+' : ''}${fmt.mib(growth)} (${((100 * growth) / afterFirst).toFixed(0)} %)`,
      last <= rssBound,
    );
    const heapStart = memory[0]!.heap;
    const heapEnd = memory.at(-1)!.heap;
    const heapBound = heapStart + Math.max(16 * 2 ** 20, heapStart * 0.1);
    record(
      'JS heap after a full GC: start -> end',
      `${fmt.mib(heapStart)} -> ${fmt.mib(heapEnd)}`,
      heapEnd <= heapBound,
    );

    const sample = (list: Sent[]) =>
      list
        .slice(0, 5)
        .map((a) => `${a.name}: ${a.answer.status} ${a.answer.error ?? a.answer.body.slice(0, 200)}`);
    expect(sample(serverErrors)).toEqual([]);
    expect(server5xx).toBe(0);
    expect(sample(unansweredOther)).toEqual([]);
    // Every oversized upload got its 413, as the server counts it; those the client read say 413.
    expect(oversized413).toBeGreaterThanOrEqual(oversized.length);
    expect(sample(oversizedNot413)).toEqual([]);
    expect(sample(unnamed)).toEqual([]);
    expect(answers.length).toBe(ROUNDS * PER_ROUND);
    expect(alive).toBe(true);
    expect(feedback.body.total).toBe(0);
    expect(sameLabels).toBe(digits.length);
    expect(errorLogLines).toBe(0);
    expect(last).toBeLessThanOrEqual(rssBound);
    expect(heapEnd).toBeLessThanOrEqual(heapBound);
  });
});

/** A JSON error message, and whether it comes in the API's own envelope. */
function messageOf(body: string): { message: string; enveloped: boolean } | null {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown };
    if (typeof parsed.error === 'object' && typeof parsed.error.message === 'string' && parsed.error.message)
      return { message: parsed.error.message, enveloped: true };
    // Fastify's own router errors ('... is not a valid url component'); 'Client Error' names nothing.
    if (typeof parsed.message === 'string' && parsed.message && parsed.message !== 'Client Error')
      return { message: parsed.message, enveloped: false };
    return null;
  } catch {
    return null;
  }
}

async function memoryOf(api: ApiProcess): Promise<{ rss: number; heap: number }> {
  await collectGarbage(api);
  await sleep(500);
  const metrics = await call<string>(`${api.url}/metrics`);
  const heap = /^nodejs_heap_size_used_bytes (\S+)$/m.exec(metrics.body);
  return { rss: api.rss(), heap: Number(heap?.[1] ?? NaN) };
}

/** Answers the server itself counted, by status (Prometheus request histogram). */
async function statusCounts(api: string): Promise<Map<number, number>> {
  const metrics = await call<string>(`${api}/metrics`);
  const counts = new Map<number, number>();
  for (const [, status, n] of metrics.body.matchAll(
    /^http_request_duration_seconds_count\{[^}]*status="(\d+)"[^}]*\} (\d+)$/gm,
  ))
    counts.set(Number(status), (counts.get(Number(status)) ?? 0) + Number(n));
  return counts;
}

function sumStatuses(
  after: Map<number, number>,
  before: Map<number, number>,
  match: (s: number) => boolean,
): number {
  let sum = 0;
  for (const [status, n] of after) if (match(status)) sum += n - (before.get(status) ?? 0);
  return sum;
}

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values.sort()) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}
