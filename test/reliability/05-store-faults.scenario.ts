import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { JobEndings } from '../../src/jobs/job-endings.js';
import type { JobView } from '../../src/jobs/job-schema.js';
import { sleep } from '../helpers/until.js';
import { call, postJob, testDigits, waitForJob, waitForServing } from './helpers/client.js';
import { Cluster, type NodeProcess } from './helpers/cluster.js';
import { figures, fmt } from './helpers/figures.js';
import { watchStore } from './helpers/store-view.js';

const SCENARIO = '5 store faults';
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0;
/** A full or read-only disk may be a passing state: the job retries once, then fails for good. */
const ATTEMPTS = { JOB_ATTEMPTS: '2' };
const JOB = { epochs: 2, trainSize: 1_000, validationSize: 200 };

interface FaultRun {
  served: number;
  failed: JobView;
  listed: { serving: number | null; models: { version: number }[] };
  ready: number;
  after: JobView;
  /** /predict answers from the start of the faulty job until the next version was served. */
  predictions: { status: number; version: number | undefined }[];
  partial: string[];
  looks: number;
  staging: string[];
  /** What the failed job's ending key holds: a failed publication must give its claim back. */
  ending: string | null;
  /** The worker's log: the store's own error is there; clients see only a plain message. */
  workerLog: string;
}

/**
 * The store breaks while a job trains, so it is broken at the job's publish. Then it is repaired
 * and one more job runs, to show the service recovers by itself.
 */
async function faultDuringPublish(
  cluster: Cluster,
  worker: NodeProcess,
  inject: () => Promise<void> | void,
  clear: () => Promise<void> | void,
): Promise<FaultRun> {
  const api = await cluster.startApi(ATTEMPTS);
  const first = await waitForJob(api.url, (await postJob(api.url, { ...JOB, epochs: 1 })).id);
  expect(first.state).toBe('completed');
  const served = first.result!.modelVersion;
  await waitForServing(api.url, served);

  const digit = (await testDigits(1))[0]!;
  const predictions: FaultRun['predictions'] = [];
  let predicting = true;
  const load = (async () => {
    while (predicting) {
      const answer = await call<{ modelVersion?: number }>(`${api.url}/predict`, {
        json: { image: digit.image },
      }).catch(() => ({ status: 0, body: {} as { modelVersion?: number } }));
      predictions.push({ status: answer.status, version: answer.body.modelVersion });
      await sleep(20);
    }
  })();
  const store = watchStore(cluster.store, 5);
  const job = await postJob(api.url, JOB);
  await waitForJob(api.url, job.id, (v) => v.state === 'active' && v.progress !== null, 60_000, 25);
  await inject();
  const failed = await waitForJob(api.url, job.id, undefined, 120_000);
  const redis = new Redis(cluster.redis.url);
  const ending = await new JobEndings(redis, cluster.prefix, 60).read(job.id).finally(() => redis.quit());
  const listed = await call<FaultRun['listed']>(`${api.url}/models`);
  const ready = await call(`${api.url}/readyz`);
  await clear();
  const after = await waitForJob(api.url, (await postJob(api.url, { ...JOB, epochs: 1, seed: 9 })).id);
  predicting = false;
  await load;
  const seen = await store.stop();
  await worker.kill();
  const workerLog = worker.log();
  return {
    served,
    failed,
    listed: listed.body,
    ready: ready.status,
    after,
    predictions: predictions.filter((p) => p.version !== after.result?.modelVersion),
    partial: seen.partial,
    looks: seen.looks,
    staging: readdirSafe(join(cluster.modelDir, '.staging')),
    ending,
    workerLog,
  };
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function check(record: ReturnType<typeof figures>, label: string, reason: RegExp, r: FaultRun): void {
  const fromServed = r.predictions.filter((p) => p.status === 200 && p.version === r.served).length;
  // The store's errno text is for the operator (the worker's log), not for the client (issue 12).
  const saysWhy =
    r.failed.state === 'failed' &&
    r.failed.errorCode === 'internal' &&
    !reason.test(r.failed.error ?? '') &&
    reason.test(r.workerLog);
  record(
    `${label}: the job (its error, and the worker's log)`,
    `${r.failed.state} after ${r.failed.attempts} attempts: ${r.failed.errorCode} "${r.failed.error?.slice(0, 90)}"; the log names ${reason}: ${reason.test(r.workerLog)}`,
    saysWhy,
  );
  record(
    `${label}: partial versions seen / staging dirs left`,
    `${r.partial.length} in ${fmt.int(r.looks)} looks / ${r.staging.length}`,
    r.partial.length === 0 && r.staging.length === 0,
  );
  record(
    `${label}: the job's claim to publish, after it failed`,
    r.ending === null ? 'given back' : `still held: ${r.ending}`,
    r.ending === null,
  );
  record(
    `${label}: GET /models, /readyz`,
    `versions [${r.listed.models.map((m) => m.version).join(', ')}], serving ${r.listed.serving}; /readyz ${r.ready}`,
    r.listed.serving === r.served && r.listed.models.length === 1,
  );
  record(
    `${label}: /predict answered 200 from version ${r.served}`,
    `${fromServed} of ${r.predictions.length}`,
    fromServed === r.predictions.length && r.predictions.length > 0,
  );
  record(
    `${label}: next job once repaired`,
    `${r.after.state}, version ${r.after.result?.modelVersion}`,
    r.after.state === 'completed',
  );

  expect(r.failed.state).toBe('failed');
  expect(r.failed.errorCode).toBe('internal');
  expect(r.workerLog).toMatch(reason);
  expect(r.partial).toEqual([]);
  expect(r.staging).toEqual([]);
  expect(r.ending).toBeNull();
  expect(r.listed.serving).toBe(r.served);
  expect(r.listed.models.map((m) => m.version)).toEqual([r.served]);
  expect(r.predictions.length).toBeGreaterThan(0);
  expect(fromServed).toBe(r.predictions.length);
  expect(r.after.state).toBe('completed');
}

describe(SCENARIO, () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it.skipIf(isRoot && !hasSetpriv)(
    'when MODEL_DIR turns read-only during a job, then the job fails saying so, no partial version appears, and the API keeps serving',
    async ({ task }) => {
      const record = figures(task, SCENARIO);
      const cluster = await Cluster.start('05-store-read-only');
      cleanups.push(() => cluster.close());
      // Root ignores file modes, so as root the worker runs as nobody.
      const uid = isRoot ? NOBODY : undefined;
      chmodSync(cluster.dir, 0o755);
      for (const dir of [cluster.modelDir, cluster.checkpointDir]) {
        mkdirSync(dir, { recursive: true });
        if (uid !== undefined) chownSync(dir, uid, uid);
      }
      const worker = cluster.startWorker(
        { ...ATTEMPTS, HOME: cluster.dir },
        uid === undefined ? {} : { uid },
      );
      const result = await faultDuringPublish(
        cluster,
        worker,
        () => chmodSync(cluster.modelDir, 0o555),
        () => chmodSync(cluster.modelDir, 0o755),
      );
      check(record, 'read-only MODEL_DIR', /EACCES|permission denied/i, result);
    },
  );

  it('when MODEL_DIR fills up during a job, then the job fails saying so, no partial version appears, and the API keeps serving', async ({
    task,
    skip,
  }) => {
    const record = figures(task, SCENARIO);
    const cluster = await Cluster.start('05-store-full');
    cleanups.push(() => cluster.close());
    mkdirSync(cluster.modelDir, { recursive: true });
    // A small file system of its own: a tmpfs needs root (CAP_SYS_ADMIN).
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', cluster.modelDir], {
      encoding: 'utf8',
    });
    if (mount.status !== 0) {
      record('full MODEL_DIR', `not run: cannot mount a tmpfs here (${mount.stderr.trim() || mount.error})`);
      skip();
    }
    cleanups.push(() => void spawnSync('umount', ['-l', cluster.modelDir]));
    const filler = join(cluster.modelDir, '.filler');
    const worker = cluster.startWorker(ATTEMPTS);
    const result = await faultDuringPublish(
      cluster,
      worker,
      async () => {
        // Leave 32 KiB: less than one model's weights (240 KB), more than a directory entry.
        const fs = await statfs(cluster.modelDir);
        writeFileSync(filler, Buffer.alloc(Math.max(0, fs.bavail * fs.bsize - 32 * 1024)));
      },
      () => rmSync(filler),
    );
    check(record, 'full MODEL_DIR', /ENOSPC|no space/i, result);
  });
});
