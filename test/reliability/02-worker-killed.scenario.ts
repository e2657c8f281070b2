import { existsSync, mkdirSync, readFileSync, watch } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/jobs/job-schema.js';
import { inspectStore, postJob, waitForJob, watchStore } from './helpers/client.js';
import { Cluster } from './helpers/cluster.js';
import { figures, fmt } from './helpers/figures.js';
import { inMode } from './helpers/mode.js';

const SCENARIO = '2 worker killed';
const KILLS = 3;
const EPOCHS = KILLS + 1;
const TRAIN_SIZE = inMode(6_000, 20_000);
/** Short locks, so a dead worker's job is noticed in seconds (WORKER_LOCK_MS, README). */
const WORKER_ENV = { WORKER_LOCK_MS: '1500' };

describe(SCENARIO, () => {
  let cluster: Cluster;
  let second: Cluster | undefined;
  afterAll(async () => {
    await cluster?.close();
    await second?.close();
  });

  it(`when the worker is SIGKILLed during an epoch ${KILLS} times, then the job completes from its checkpoints with one complete version`, async ({
    task,
  }) => {
    const record = figures(task, SCENARIO);
    cluster = await Cluster.start('02-worker-killed');
    const api = await cluster.startApi();
    const store = watchStore(cluster.modelDir, 5);
    const before = inspectStore(cluster.modelDir).versions;
    let worker = cluster.startWorker(WORKER_ENV);
    await worker.ready;
    const job = await postJob(api.url, {
      epochs: EPOCHS,
      trainSize: TRAIN_SIZE,
      validationSize: 500,
      seed: 7,
    });

    const kills: { epoch: number; batch: number; batches: number; recoveryMs: number; resumedAt: number }[] =
      [];
    const historyAtKill: JobView['history'][] = [];
    for (let k = 1; k <= KILLS; k++) {
      // Epoch k is done and checkpointed; epoch k+1 is well under way.
      const midEpoch = await waitForJob(
        api.url,
        job.id,
        (v) =>
          v.state === 'active' &&
          v.history.length === k &&
          v.progress?.epoch === k + 1 &&
          v.progress.batch >= 0.2 * v.progress.batches &&
          v.progress.batch <= 0.8 * v.progress.batches,
        120_000,
        25,
      );
      await worker.kill('SIGKILL');
      const killedAt = Date.now();
      historyAtKill.push(midEpoch.history);
      worker = cluster.startWorker(WORKER_ENV);
      // Resumed: training again, with the finished epochs carried over, on a new attempt.
      const resumed = await waitForJob(
        api.url,
        job.id,
        (v) =>
          v.state === 'active' &&
          (v.attempts ?? 0) > midEpoch.attempts &&
          v.progress !== null &&
          v.history.length >= k,
        120_000,
        25,
      );
      kills.push({
        epoch: midEpoch.progress!.epoch,
        batch: midEpoch.progress!.batch,
        batches: midEpoch.progress!.batches,
        recoveryMs: Date.now() - killedAt,
        resumedAt: resumed.history.length,
      });
    }
    const final = await waitForJob(api.url, job.id, undefined, 180_000);
    const seen = await store.stop();
    const after = inspectStore(cluster.modelDir).versions;
    const added = after.filter((v) => !before.includes(v));
    const resumedNotRestarted = historyAtKill.every((h) =>
      h.every((epoch, i) => JSON.stringify(final.history[i]) === JSON.stringify(epoch)),
    );

    record(
      'kills (SIGKILL, mid-epoch)',
      kills.map((k) => `epoch ${k.epoch} batch ${k.batch}/${k.batches}`).join('; '),
      kills.length === KILLS,
    );
    record(
      'kill -> training again (new worker start + lock lapse)',
      kills.map((k) => fmt.ms(k.recoveryMs)).join(', '),
    );
    record(
      'epochs carried over at each resume',
      kills.map((k) => k.resumedAt).join(', '),
      kills.every((k, i) => k.resumedAt === i + 1),
    );
    record('final state', `${final.state} after ${final.attempts} attempts`, final.state === 'completed');
    record(
      "history equals the killed workers' epochs",
      resumedNotRestarted ? 'yes' : 'no',
      resumedNotRestarted,
    );
    record('model versions added', added.length, added.length === 1);
    record(
      'partial version dirs seen',
      `${seen.partial.length} in ${fmt.int(seen.looks)} looks at the store`,
      seen.partial.length === 0,
    );
    const leftover = existsSync(join(cluster.checkpointDir, job.id));
    record('checkpoint left after completion', leftover ? 'yes' : 'no', !leftover);

    expect(kills).toHaveLength(KILLS);
    expect(kills.map((k) => k.resumedAt)).toEqual(kills.map((_, i) => i + 1));
    expect(final.state).toBe('completed');
    expect(final.history.map((h) => h.epoch)).toEqual(Array.from({ length: EPOCHS }, (_, i) => i + 1));
    expect(resumedNotRestarted).toBe(true);
    expect(added).toEqual([final.result!.modelVersion]);
    expect(seen.partial).toEqual([]);
    expect(leftover).toBe(false);
  });

  it('when the worker is SIGKILLed just after its version appears, before the job is marked complete, then the job still has one version', async ({
    task,
  }) => {
    const record = figures(task, SCENARIO);
    second = await Cluster.start('02-worker-killed-publish');
    const api = await second.startApi();
    mkdirSync(second.modelDir, { recursive: true });
    const worker = second.startWorker(WORKER_ENV);
    const job = await postJob(api.url, { epochs: 1, trainSize: 500, validationSize: 0 });
    // inotify tells us of the rename that makes the version visible, within a millisecond.
    const appeared = await new Promise<string>((resolve) => {
      const watcher = watch(second!.modelDir, (_event, name) => {
        if (!name || !/^[1-9][0-9]*$/.test(name)) return;
        worker.child.kill('SIGKILL');
        watcher.close();
        resolve(name);
      });
    });
    const stateAtKill = (await waitForJob(api.url, job.id, () => true)).state;
    second.startWorker(WORKER_ENV);
    const final = await waitForJob(api.url, job.id, undefined, 120_000);
    const versions = inspectStore(second.modelDir).versions;
    const ofJob = versions.filter(
      (v) =>
        (
          JSON.parse(readFileSync(join(second!.modelDir, String(v), 'metadata.json'), 'utf8')) as {
            jobId: string;
          }
        ).jobId === job.id,
    ).length;

    record(
      `SIGKILL as version ${appeared} appeared (job still ${stateAtKill})`,
      `job ${final.state} as version ${final.result?.modelVersion}; versions of this job in the store: ${ofJob} (${versions.join(', ')})`,
      final.state === 'completed' && ofJob === 1,
    );
    expect(final.state).toBe('completed');
    expect(ofJob, 'one job, one version: a retry after a crash must not publish the job again').toBe(1);
  });
});
