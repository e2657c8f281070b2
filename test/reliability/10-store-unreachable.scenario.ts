import { afterAll, describe, expect, it } from 'vitest';
import { S3FaultProxy, type Outage, type SeenRequest, type TrapOptions } from '../helpers/s3-fault-proxy.js';
import { sleep } from '../helpers/until.js';
import { call, postJob, testDigits, waitForJob, waitForServing, type Answer } from './helpers/client.js';
import { Cluster, waitUntil, type NodeProcess } from './helpers/cluster.js';
import { figures, fmt } from './helpers/figures.js';
import { inMode } from './helpers/mode.js';
import { claimWrite, versionMarkerWrite, versionOf, weightsRead } from './helpers/store-traps.js';
import { watchStore } from './helpers/store-view.js';

const SCENARIO = '10 store unreachable';
const JOB = { epochs: 1, trainSize: 500, validationSize: 100 };
/**
 * Attempts enough that no outage shorter than the safety nets can use them up (the retries back
 * off 2, 4, 8, ... 512 s): how many attempts a job takes is a figure, not a verdict.
 */
const ATTEMPTS = { JOB_ATTEMPTS: '10' };
/**
 * /predict answers the store's outage lasts for (one client, back to back: a few seconds): counted,
 * so its length is not a timer's.
 */
const ANSWERS_WHILE_AWAY = inMode(150, 500);

interface Readiness {
  ready: boolean;
  checks: { redis: { ok: boolean }; modelStore: { ok: boolean; error?: string } };
  model: { version: number | null };
}

interface Prediction {
  started: number;
  ended: number;
  status: number;
  version: number | undefined;
}

/** One client calling /predict back to back until stopped. */
function predictLoop(api: string, image: number[]) {
  const answers: Prediction[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = Date.now();
      const answer = await call<{ modelVersion?: number }>(`${api}/predict`, { json: { image } }).catch(
        () => ({ status: 0, body: {} as { modelVersion?: number } }),
      );
      answers.push({ started, ended: Date.now(), status: answer.status, version: answer.body.modelVersion });
      await sleep(10);
    }
  })();
  return {
    answers,
    async stop(): Promise<Prediction[]> {
      running = false;
      await loop;
      return answers;
    },
  };
}

/**
 * A cluster on an S3 store whose API and worker reach it only through a fault proxy, serving the
 * version its first job published.
 */
async function servingCluster(name: string, apiEnv: Record<string, string> = {}) {
  const cluster = await Cluster.start(name, { store: 's3' });
  const proxy = await S3FaultProxy.start(cluster.s3!.endpoint, cluster.s3!.bucket);
  const viaProxy = { ...ATTEMPTS, S3_ENDPOINT: proxy.endpoint };
  const api = await cluster.startApi({ ...viaProxy, ...apiEnv });
  const worker = cluster.startWorker(viaProxy);
  const first = await waitForJob(api.url, (await postJob(api.url, JOB)).id);
  expect(first.state, JSON.stringify(first)).toBe('completed');
  const served = first.result!.modelVersion;
  await waitForServing(api.url, served);
  return { cluster, proxy, api, worker, served };
}

interface OutageRun {
  served: number;
  trapped: SeenRequest;
  outage: Outage;
  readyWhileAway: Answer<Readiness>;
  /** Attempts of the job the worker had seen fail when the store came back. */
  failedWhileAway: number;
  final: Awaited<ReturnType<typeof waitForJob>>;
  /** The version the API serves in the end, and when it first did (from GET /models). */
  servingAt: number;
  readyAgainAt: number;
  versions: number[];
  ofJob: number;
  partial: string[];
  looks: number;
  predictions: Prediction[];
}

/**
 * The store goes away at the request `trap` names, during the job the scenario posts; the
 * scenario looks at the service while it is away (/readyz, ANSWERS_WHILE_AWAY /predict answers,
 * and, with `failedAttempt`, until the worker has failed the job's attempt), then brings it back
 * and waits for the job to end and the API to serve its version.
 */
async function outageDuring(
  run: Awaited<ReturnType<typeof servingCluster>>,
  trap: (r: SeenRequest) => boolean,
  options: TrapOptions & { failedAttempt: boolean },
): Promise<OutageRun> {
  const { cluster, proxy, api, worker, served } = run;
  const digit = (await testDigits(1))[0]!;
  const store = watchStore(cluster.store, 20);
  const predictions = predictLoop(api.url, digit.image);
  const sprung = proxy.trap(trap, options);
  const job = await postJob(api.url, JOB);
  const { request: trapped, at: cutAt } = await sprung;

  const readyWhileAway = await call<Readiness>(`${api.url}/readyz`);
  await waitUntil(
    `${ANSWERS_WHILE_AWAY} /predict answers while the store is away`,
    () =>
      predictions.answers.filter((a) => a.started >= cutAt).length >= ANSWERS_WHILE_AWAY ? true : undefined,
    60_000,
  );
  if (options.failedAttempt)
    await waitUntil(
      'the worker to fail the attempt',
      () => (failures(worker) > 0 ? true : undefined),
      60_000,
    );
  const failedWhileAway = failures(worker);
  const outage = proxy.restore();

  const final = await waitForJob(api.url, job.id, undefined, 180_000);
  const version = final.result?.modelVersion ?? -1;
  await waitForServing(api.url, version, 60_000);
  const servingAt = Date.now();
  await waitUntil('/readyz to answer 200 again', async () =>
    (await call(`${api.url}/readyz`)).status === 200 ? true : undefined,
  );
  const readyAgainAt = Date.now();
  const answers = await predictions.stop();
  const seen = await store.stop();
  const versions = (await cluster.store.inspect()).versions;
  const jobs = await Promise.all(versions.map((v) => cluster.store.jobOf(v)));
  return {
    served,
    trapped,
    outage,
    readyWhileAway,
    failedWhileAway,
    final,
    servingAt,
    readyAgainAt,
    versions,
    ofJob: jobs.filter((id) => id === job.id).length,
    partial: seen.partial,
    looks: seen.looks,
    predictions: answers,
  };
}

/** Attempts the worker has logged as failed. */
function failures(worker: NodeProcess): number {
  return worker
    .log()
    .split('\n')
    .filter((line) => line.includes('training job failed')).length;
}

const describeRequest = (r: SeenRequest) => `${r.method} ${r.key?.replace(/^[^/]*\//, '')}`;

/** The figures and checks every outage shares: the store's absence is seen, and nothing breaks. */
function checkOutage(record: ReturnType<typeof figures>, label: string, r: OutageRun): void {
  const ready = r.readyWhileAway;
  const saysWhy =
    ready.status === 503 &&
    ready.body.checks.modelStore.ok === false &&
    ready.body.checks.modelStore.error === 'the model store cannot be read' &&
    ready.body.checks.redis.ok &&
    ready.body.model.version === r.served;
  const newVersion = r.final.result?.modelVersion;
  const away = r.predictions.filter((p) => p.started >= r.outage.cutAt && p.ended <= r.outage.restoredAt);
  const awayFromServed = away.filter((p) => p.status === 200 && p.version === r.served).length;
  const firstNew = r.predictions.findIndex((p) => p.version === newVersion);
  // Every answer 200, from the served version until the new one, then from the new one.
  const inOrder =
    firstNew > 0 &&
    r.predictions.every((p, i) => p.status === 200 && p.version === (i < firstNew ? r.served : newVersion));
  const failed = r.predictions.filter((p) => p.status !== 200).length;
  const sinceBack = (at: number) =>
    at < r.outage.restoredAt ? 'before it was back' : fmt.ms(at - r.outage.restoredAt);

  record(
    `${label}: outage (cut -> restore), connections refused meanwhile`,
    `${fmt.ms(r.outage.ms)}, ${r.outage.refusedConnections} refused (${r.outage.cutConnections} cut at the start)`,
  );
  record(
    `${label}: /readyz while away`,
    `${ready.status}, modelStore ${JSON.stringify(ready.body.checks.modelStore)}, redis ok ${ready.body.checks.redis.ok}, serving v${ready.body.model.version}`,
    saysWhy,
  );
  record(
    `${label}: /predict while away: 200 from v${r.served} / all`,
    `${awayFromServed} / ${away.length}`,
    away.length >= ANSWERS_WHILE_AWAY && awayFromServed === away.length,
  );
  record(
    `${label}: /predict throughout: 200 from v${r.served} until v${newVersion} is served, then from it`,
    `${firstNew} from v${r.served}, then ${r.predictions.length - Math.max(firstNew, 0)} from v${newVersion}; ${failed} failed`,
    inOrder,
  );
  record(
    `${label}: store back -> job completed / API serves it / /readyz 200`,
    `${sinceBack(Date.parse(r.final.finishedAt ?? ''))} / ${sinceBack(r.servingAt)} / ${sinceBack(r.readyAgainAt)}`,
  );
  record(
    `${label}: versions of the job / in the store / partial seen`,
    `${r.ofJob} / [${r.versions.join(', ')}] / ${r.partial.length} in ${fmt.int(r.looks)} looks`,
    r.final.state === 'completed' && r.ofJob === 1 && r.partial.length === 0,
  );

  expect(ready.status).toBe(503);
  expect(ready.body.checks.modelStore).toEqual({ ok: false, error: 'the model store cannot be read' });
  expect(ready.body.checks.redis.ok).toBe(true);
  expect(ready.body.model.version).toBe(r.served);
  expect(away.length).toBeGreaterThanOrEqual(ANSWERS_WHILE_AWAY);
  expect(awayFromServed).toBe(away.length);
  expect(failed).toBe(0);
  expect(inOrder).toBe(true);
  expect(r.final.state).toBe('completed');
  expect(r.ofJob, 'one job, one version').toBe(1);
  expect(r.versions).toEqual([r.served, newVersion]);
  expect(r.partial).toEqual([]);
}

describe(SCENARIO, () => {
  const clusters: Cluster[] = [];
  const proxies: S3FaultProxy[] = [];
  afterAll(async () => {
    for (const proxy of proxies) await proxy.close();
    for (const cluster of clusters) await cluster.close();
  });

  async function start(name: string, apiEnv: Record<string, string> = {}) {
    const run = await servingCluster(name, apiEnv);
    clusters.push(run.cluster);
    proxies.push(run.proxy);
    return run;
  }

  it('when the S3 store goes away as a job claims its version number, then the job retries and publishes once, /predict keeps answering from the served version, and /readyz says why until the store is back', async ({
    task,
  }) => {
    const record = figures(task, SCENARIO);
    const run = await start('10-store-unreachable-claim');
    const r = await outageDuring(run, claimWrite(run.cluster.prefix), { failedAttempt: true });
    const claimed = versionOf(run.cluster.prefix, r.trapped);
    const label = 'away at the claim';
    record(
      `${label}: the store went away at`,
      `${describeRequest(r.trapped)} (never reached the server): number ${claimed} taken, never used`,
    );
    record(
      `${label}: the job`,
      `${r.final.state} as v${r.final.result?.modelVersion} after ${r.final.attempts} attempts, ${r.failedWhileAway} failed while away`,
      r.final.attempts >= 2 && r.failedWhileAway >= 1,
    );
    checkOutage(record, label, r);
    expect(r.failedWhileAway).toBeGreaterThanOrEqual(1);
    expect(r.final.attempts).toBeGreaterThanOrEqual(2);
    // Numbers are never reused: the one taken when the store went away stays unused.
    expect(r.final.result!.modelVersion).toBeGreaterThan(claimed!);
  });

  it('when the S3 store goes away just as a version became visible (the answer to its metadata write lost), then the retry reports that version and publishes nothing more', async ({
    task,
  }) => {
    const record = figures(task, SCENARIO);
    const run = await start('10-store-unreachable-marker');
    const r = await outageDuring(run, versionMarkerWrite(run.cluster.prefix), {
      at: 'answer',
      failedAttempt: true,
    });
    const visible = versionOf(run.cluster.prefix, r.trapped);
    const label = 'away at the answer to the metadata';
    record(
      `${label}: the store went away at`,
      `${describeRequest(r.trapped)} (stored; its answer lost): v${visible} visible, the worker not told`,
    );
    record(
      `${label}: the job`,
      `${r.final.state} as v${r.final.result?.modelVersion} after ${r.final.attempts} attempts, ${r.failedWhileAway} failed while away`,
      r.final.attempts >= 2 && r.failedWhileAway >= 1 && r.final.result?.modelVersion === visible,
    );
    checkOutage(record, label, r);
    expect(r.failedWhileAway).toBeGreaterThanOrEqual(1);
    expect(r.final.attempts).toBeGreaterThanOrEqual(2);
    expect(r.final.result!.modelVersion).toBe(visible);
  });

  it('when the S3 store goes away as the API loads a new version, then /predict keeps answering from the loaded one and the API serves the new one once the store is back', async ({
    task,
  }) => {
    const record = figures(task, SCENARIO);
    // The announcement of the version is spent on the load that failed: the store poll retries it.
    const run = await start('10-store-unreachable-load', { MODEL_POLL_MS: '250' });
    const r = await outageDuring(run, weightsRead(run.cluster.prefix, run.served), { failedAttempt: false });
    const loading = versionOf(run.cluster.prefix, r.trapped);
    const label = 'away during a model load';
    record(
      `${label}: the store went away at`,
      `${describeRequest(r.trapped)} (the API loading v${loading}; MODEL_POLL_MS=250)`,
    );
    record(
      `${label}: the job`,
      `${r.final.state} as v${r.final.result?.modelVersion} after ${r.final.attempts} attempts`,
      r.final.result?.modelVersion === loading,
    );
    checkOutage(record, label, r);
    expect(r.final.result!.modelVersion).toBe(loading);
  });
});
