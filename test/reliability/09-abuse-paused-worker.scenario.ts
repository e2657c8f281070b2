import { afterAll, describe, expect, it } from 'vitest';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { postJob, waitForJob } from './helpers/client.js';
import { Cluster, waitUntil, type NodeProcess } from './helpers/cluster.js';
import { figures, fmt } from './helpers/figures.js';
import { inMode } from './helpers/mode.js';

const SCENARIO = '9 abuse: paused worker';
/** Short locks, so a paused worker's job moves on in seconds (WORKER_LOCK_MS). */
const WORKER_ENV = { WORKER_LOCK_MS: '1500' };
const JOB = { epochs: 3, trainSize: inMode(2_500, 12_000), validationSize: 500 };

interface LogLine {
  msg: string;
  jobId?: string;
  noticedBy?: string;
}

/** The worker's pino lines (JSON), as far as it has written them. */
function logLines(worker: NodeProcess): LogLine[] {
  return worker
    .log()
    .split('\n')
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as LogLine];
      } catch {
        return [];
      }
    });
}

const said = (worker: NodeProcess, jobId: string, msg: (m: string) => boolean) =>
  logLines(worker).find((l) => l.jobId === jobId && msg(l.msg));

interface Round {
  name: string;
  jobId: string;
  takeoverMs: number;
  noticedBy: string;
  versions: number;
  state: string;
}

describe(SCENARIO, () => {
  let cluster: Cluster;
  afterAll(() => cluster?.close());

  it('when a worker is paused (SIGSTOP) mid-training and another takes its job over, then on SIGCONT it publishes nothing: one version per job', async ({
    task,
  }) => {
    const record = figures(task, SCENARIO);
    cluster = await Cluster.start('09-abuse-paused-worker');
    const api = await cluster.startApi();
    const workers = [cluster.startWorker(WORKER_ENV), cluster.startWorker(WORKER_ENV)];
    await Promise.all(workers.map((w) => w.ready));
    const store = new FileModelStore(cluster.modelDir);
    const rounds: Round[] = [];

    /**
     * Pauses the worker that trains a new job in its epoch 2, waits until the other one has taken
     * the job over (its log says it started training it), and resumes the paused one either at
     * once (`while the replacement trains`) or once the job has completed (`after it published`).
     */
    async function round(name: string, resumeAfterCompletion: boolean): Promise<void> {
      const job = await postJob(api.url, JOB);
      await waitForJob(
        api.url,
        job.id,
        (v) => v.state === 'active' && v.history.length === 1 && (v.progress?.batch ?? 0) > 3,
        120_000,
        25,
      );
      const paused = workers.find((w) => said(w, job.id, (m) => m === 'training started'))!;
      const replacement = workers.find((w) => w !== paused)!;
      paused.child.kill('SIGSTOP');
      const pausedAt = Date.now();
      await waitUntil(
        `${replacement.name} to take job ${job.id} over`,
        () => (said(replacement, job.id, (m) => m === 'training started') ? true : undefined),
        120_000,
      );
      const takeoverMs = Date.now() - pausedAt;
      if (resumeAfterCompletion) await waitForJob(api.url, job.id, undefined, 180_000);
      paused.child.kill('SIGCONT');
      // Counted once the paused worker's processor has ended (it says so), or once it has
      // published a second version (what happened before the fence).
      const versionsOfJob = async () => (await store.list()).filter((m) => m.jobId === job.id).length;
      await waitUntil(
        `${paused.name} to let job ${job.id} go`,
        async () =>
          said(paused, job.id, (m) => m.startsWith('training stopped after losing')) ||
          (await versionsOfJob()) > 1
            ? true
            : undefined,
        180_000,
      );
      const lost = said(paused, job.id, (m) => m.startsWith('lost the job lock'));
      const final = await waitForJob(api.url, job.id, undefined, 180_000);
      const versions = await versionsOfJob();
      rounds.push({
        name,
        jobId: job.id,
        takeoverMs,
        noticedBy: lost?.noticedBy ?? 'never: it went on',
        versions,
        state: final.state,
      });
    }

    await round('SIGCONT while the replacement trains', false);
    await round('SIGCONT after the replacement published', true);
    const alive = workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
    const statesOk = rounds.every((r) => r.state === 'completed');
    const onePerJob = rounds.every((r) => r.versions === 1);

    record('worker lock (WORKER_LOCK_MS)', fmt.ms(Number(WORKER_ENV.WORKER_LOCK_MS)));
    record(
      'SIGSTOP -> job taken over by the other worker',
      rounds.map((r) => fmt.ms(r.takeoverMs)).join(', '),
    );
    for (const r of rounds) {
      record(`${r.name}: the paused worker noticed by`, r.noticedBy);
    }
    record(
      'jobs completed',
      `${rounds.filter((r) => r.state === 'completed').length} of ${rounds.length}`,
      statesOk,
    );
    record('versions per job', rounds.map((r) => r.versions).join(', '), onePerJob);
    record(
      'workers alive afterwards',
      `${alive.length} of ${workers.length}`,
      alive.length === workers.length,
    );

    expect(rounds.map((r) => r.state)).toEqual(['completed', 'completed']);
    expect(rounds.map((r) => r.versions)).toEqual([1, 1]);
    expect(alive).toHaveLength(workers.length);
  });
});
