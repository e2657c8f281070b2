import autocannon from 'autocannon';
import { afterAll, describe, expect, it } from 'vitest';
import { sleep } from '../helpers/until.js';
import { call, postJob, testDigits, waitForJob, waitForServing } from './helpers/client.js';
import { Cluster, waitUntil } from './helpers/cluster.js';
import { figures, fmt } from './helpers/figures.js';
import { inMode } from './helpers/mode.js';

const SCENARIO = '7 load';
/**
 * The load lasts this long at least, and until the API answers from the newest version published
 * during it: waited for, so a slow training on a busy machine cannot end the load before the swap.
 */
const SECONDS = inMode(10, 60);
/** A safety net only: the load is stopped once the newest version is answered from. */
const MAX_SECONDS = SECONDS + 120;
const CONNECTIONS = 64;
/** A new version is published this often during the load (the first one 1 s in). */
const SWAP_EVERY_MS = inMode(60_000, 15_000);
const SWAP_JOB = { epochs: 1, trainSize: 200, validationSize: 0 };

describe(SCENARIO, () => {
  let cluster: Cluster;
  afterAll(() => cluster?.close());

  it(`when /predict takes ${SECONDS} s or more of load from ${CONNECTIONS} connections while new versions are published, then no request fails and the newest is served`, async ({
    task,
  }) => {
    const record = figures(task, SCENARIO);
    cluster = await Cluster.start('07-load');
    const api = await cluster.startApi();
    const worker = cluster.startWorker();
    const first = await waitForJob(api.url, (await postJob(api.url, SWAP_JOB)).id);
    await waitForServing(api.url, first.result!.modelVersion);
    const digit = (await testDigits(1))[0]!;

    const firstSeen = new Map<number, number>();
    const perVersion = new Map<number, number>();
    const jobs: string[] = [];
    const publisher = (async () => {
      await sleep(1000);
      const until = Date.now() + SECONDS * 1000 - 1000;
      while (Date.now() < until) {
        jobs.push((await postJob(api.url, { ...SWAP_JOB, seed: jobs.length + 1 })).id);
        await sleep(Math.min(SWAP_EVERY_MS, until - Date.now()));
      }
    })();
    const loadStart = Date.now();
    let instance: autocannon.Instance | undefined;
    const loaded = new Promise<autocannon.Result>((resolve, reject) => {
      instance = autocannon(
        {
          url: `${api.url}/predict`,
          connections: CONNECTIONS,
          duration: MAX_SECONDS,
          requests: [
            {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ image: digit.image }),
              onResponse: (status, body) => {
                const version = Number(/"modelVersion":(\d+)/.exec(body)?.[1] ?? 0);
                perVersion.set(version, (perVersion.get(version) ?? 0) + 1);
                if (status === 200 && !firstSeen.has(version)) firstSeen.set(version, Date.now());
              },
            },
          ],
        },
        (error: unknown, result) => (error ? reject(error as Error) : resolve(result)),
      );
    });
    await publisher;
    const finals = await Promise.all(jobs.map((id) => waitForJob(api.url, id, undefined, 120_000)));
    const published = finals.filter((f) => f.state === 'completed').map((f) => f.result!.modelVersion);
    // The newest only: a version published right after another may be loaded in its place.
    const newest = Math.max(0, ...published);
    await waitUntil(
      `${SECONDS} s of load, and an answer from v${newest}`,
      () => (Date.now() - loadStart >= SECONDS * 1000 && firstSeen.has(newest) ? true : undefined),
      MAX_SECONDS * 1000,
    ).catch(() => undefined); // the checks below say what did not come
    instance!.stop();
    const result = await loaded;
    const metadata = await Promise.all(
      published.map((v) =>
        call<{ createdAt: string }>(`${api.url}/models/${v}`).then((a) => ({
          v,
          at: Date.parse(a.body.createdAt),
        })),
      ),
    );
    const swapsDuringLoad = metadata.filter((m) => firstSeen.has(m.v));
    const failures = result.errors + result.timeouts + result.non2xx;

    record(
      `POST /predict, ${CONNECTIONS} connections, ${SECONDS} s or more (autocannon)`,
      `${fmt.int(result.requests.total)} requests in ${result.duration.toFixed(1)} s, ${fmt.int(result.requests.average)} req/s`,
    );
    record(
      'errors + timeouts + non-2xx',
      `${result.errors} + ${result.timeouts} + ${result.non2xx}`,
      failures === 0,
    );
    record(
      'latency p50 / p99 / max',
      `${result.latency.p50} / ${result.latency.p99} / ${result.latency.max} ms`,
    );
    record(
      'versions published during the load, and answered from',
      `${published.join(', ')}; answers by version: ${[...perVersion].map(([v, n]) => `v${v} ${fmt.int(n)}`).join(', ')}`,
      swapsDuringLoad.length > 0,
    );
    record(
      'publication -> first answer from it',
      swapsDuringLoad.map((m) => `v${m.v} ${fmt.ms(firstSeen.get(m.v)! - m.at)}`).join(', ') ||
        'no swap during the load',
    );

    expect(failures).toBe(0);
    expect(result.requests.total).toBeGreaterThan(0);
    expect(finals.every((f) => f.state === 'completed')).toBe(true);
    expect(swapsDuringLoad.length).toBeGreaterThan(0);
    expect(firstSeen.has(newest)).toBe(true);
    await worker.kill();
  });
});
