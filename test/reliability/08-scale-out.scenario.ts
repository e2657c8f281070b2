import { afterAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/jobs/job-schema.js';
import { call, postJob, testDigits, waitForJob } from './helpers/client.js';
import { sleep } from '../helpers/until.js';
import { Cluster, waitUntil, type ApiProcess } from './helpers/cluster.js';
import { figures, fmt } from './helpers/figures.js';
import { inMode } from './helpers/mode.js';
import { watchStore } from './helpers/store-view.js';

const APIS = 2;
const WORKERS = 3;
const JOBS = inMode(6, 30);
const JOB = { epochs: 1, trainSize: 300, validationSize: 0 };
/**
 * Two clients per API, each sending its next /predict this long after the last one is answered.
 * Back to back, the four clients took most of the 2 cores: the 6 jobs took minutes to train.
 */
const CLIENTS_PER_API = 2;
const POLL_PAUSE_MS = 20;
/** How publication -> every API answering from it compares with a second (a timing bar). */
const LAG_BAR_MS = 1000;

const STORES = [
  { store: 'file', scenario: '8 scale-out', suffix: '', where: 'one store' },
  { store: 's3', scenario: '8 scale-out, S3 store', suffix: '-s3', where: 'one S3 store and no disk' },
] as const;

for (const { store: storeKind, scenario: SCENARIO, suffix, where } of STORES)
  describe(SCENARIO, () => {
    let cluster: Cluster;
    afterAll(() => cluster?.close());

    it(`when ${APIS} APIs and ${WORKERS} workers share one Redis and ${where}, then every job is accounted for and both APIs serve each new version`, async ({
      task,
    }) => {
      const record = figures(task, SCENARIO);
      cluster = await Cluster.start(`08-scale-out${suffix}`, { store: storeKind });
      // A fresh store: each API starts with no model and must hear of every version.
      const apis = await Promise.all(Array.from({ length: APIS }, () => cluster.startApi()));
      const workers = Array.from({ length: WORKERS }, () => cluster.startWorker());
      await Promise.all(workers.map((w) => w.ready));
      const store = watchStore(cluster.store, 10);
      const digit = (await testDigits(1))[0]!;

      // For each API, when it first answered from each version (its clock is ours: same machine).
      const firstSeen = apis.map(() => new Map<number, number>());
      const failures: string[] = [];
      let answered = 0;
      let polling = true;
      const pollers = apis.flatMap((api: ApiProcess, i) =>
        Array.from({ length: CLIENTS_PER_API }, async () => {
          while (polling) {
            const answer = await call<{ modelVersion?: number }>(`${api.url}/predict`, {
              json: { image: digit.image },
            }).catch((e: Error) => ({ status: 0, body: { modelVersion: undefined }, error: e.message }));
            const at = Date.now();
            answered++;
            const version = answer.body.modelVersion;
            if (answer.status === 200 && version !== undefined) {
              if (!firstSeen[i]!.has(version)) firstSeen[i]!.set(version, at);
            } else if (answer.status !== 503) failures.push(`api ${i + 1}: ${answer.status}`);
            // 503 is 'no model yet', expected until the first version is published.
            // A pause, so the clients leave the workers CPU to train on 2 cores.
            await sleep(POLL_PAUSE_MS);
          }
        }),
      );

      // The client spreads its jobs over both APIs.
      const posted = await Promise.all(
        Array.from({ length: JOBS }, (_, i) => postJob(apis[i % APIS]!.url, { ...JOB, seed: i + 1 })),
      );
      const finals: JobView[] = await Promise.all(
        posted.map((job, i) => waitForJob(apis[(i + 1) % APIS]!.url, job.id, undefined, 300_000)),
      );
      // Both APIs end up answering from the newest version: waited for, not given a fixed time.
      const newest = Math.max(
        0,
        ...finals.filter((f) => f.state === 'completed').map((f) => f.result!.modelVersion),
      );
      const upToDate = await waitUntil(
        'both APIs to answer from the newest version',
        () => (firstSeen.every((seenBy) => seenBy.has(newest)) ? true : undefined),
        60_000,
      ).catch(() => false);
      polling = false;
      await Promise.all(pollers);
      const seen = await store.stop();

      const versions = finals.filter((f) => f.state === 'completed').map((f) => f.result!.modelVersion);
      const listed = await Promise.all(apis.map((api) => call<{ total: number }>(`${api.url}/jobs?limit=1`)));
      const metadata = await Promise.all(
        versions.map(async (v) => {
          const m = await call<{ createdAt: string; jobId: string }>(`${apis[0]!.url}/models/${v}`);
          return { version: v, publishedAt: Date.parse(m.body.createdAt), jobId: m.body.jobId };
        }),
      );
      // Up to date with v: answering from v or from a newer version (one published right after v
      // may be loaded instead of it).
      const lags = apis.map((_, i) =>
        metadata.map((m) => {
          const times = [...firstSeen[i]!].filter(([v]) => v >= m.version).map(([, at]) => at);
          return times.length ? Math.min(...times) - m.publishedAt : Infinity;
        }),
      );
      const allLags = lags.flat().sort((a, b) => a - b);
      const onDisk = await cluster.store.inspect();
      const jobOfVersion = new Map(metadata.map((m) => [m.version, m.jobId]));

      record(
        `jobs posted over ${APIS} APIs, trained by ${WORKERS} workers`,
        `${JOBS} posted, ${versions.length} completed; GET /jobs total on each API: ${listed.map((l) => l.body.total).join(', ')}`,
        versions.length === JOBS && listed.every((l) => l.body.total === JOBS),
      );
      record(
        `versions: distinct / complete ${storeKind === 'file' ? 'on disk' : 'in the store'} / metadata names its job`,
        `${new Set(versions).size} / ${versions.filter((v) => onDisk.versions.includes(v)).length} / ${finals.filter((f) => jobOfVersion.get(f.result?.modelVersion ?? -1) === f.id).length} of ${JOBS}`,
        new Set(versions).size === JOBS &&
          onDisk.versions.length === JOBS &&
          finals.every((f) => jobOfVersion.get(f.result!.modelVersion) === f.id),
      );
      record(
        storeKind === 'file' ? 'partial version dirs seen' : 'partial versions seen',
        `${seen.partial.length} in ${fmt.int(seen.looks)} looks`,
        seen.partial.length === 0,
      );
      record(
        'both APIs answer from the newest version in the end',
        `v${newest}: ${upToDate ? 'yes' : 'no'}`,
        upToDate,
      );
      record.bar(
        'publication -> each API answers from it (or newer): max per API',
        lags.map((l, i) => `api ${i + 1}: ${fmt.ms(Math.max(...l))}`).join(', '),
        allLags.at(-1)!,
        LAG_BAR_MS,
      );
      record(
        'publication -> API up to date: median / p90 / max over all',
        `${fmt.ms(allLags[Math.floor(allLags.length / 2)]!)} / ${fmt.ms(allLags[Math.floor(allLags.length * 0.9)]!)} / ${fmt.ms(allLags.at(-1)!)} (${allLags.length} pairs)`,
      );
      record(
        '/predict answers over both APIs, failures',
        `${fmt.int(answered)}, ${failures.length}`,
        failures.length === 0,
      );

      expect(finals.map((f) => f.state)).toEqual(finals.map(() => 'completed'));
      expect(listed.map((l) => l.body.total)).toEqual(apis.map(() => JOBS));
      expect(new Set(versions).size).toBe(JOBS);
      expect(onDisk.versions.sort((a, b) => a - b)).toEqual([...versions].sort((a, b) => a - b));
      expect(finals.every((f) => jobOfVersion.get(f.result!.modelVersion) === f.id)).toBe(true);
      expect(seen.partial).toEqual([]);
      expect(failures).toEqual([]);
      expect(upToDate).toBe(true);
    });
  });
