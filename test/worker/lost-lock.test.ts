import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/jobs/job-schema.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { trainParamsSchema, type TrainParamsInput } from '../../src/ml/train-params.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { startTrainingWorker, type TrainingWorkerOptions } from '../../src/worker/training-worker.js';
import { logInto } from '../helpers/logs.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { useTrainingJobs } from '../helpers/training-jobs.js';
import { workerOptions } from '../helpers/training-worker.js';
import { until } from '../helpers/until.js';

const STOLEN = 'token-of-another-worker';

describe('a worker that lost its job lock', () => {
  const { redis, prefix, jobs } = useTrainingJobs('lost-lock');
  const dir = useTempDir('lost-lock');
  const store = new FileModelStore(join(dir, 'models'));
  let worker: Awaited<ReturnType<typeof startTrainingWorker>> | undefined;
  const logs: { msg: string; jobId?: string; noticedBy?: string }[] = [];

  const view = (id: string) => jobs.get(id) as Promise<JobView>;

  /**
   * A worker, and a job whose lock "another worker" takes the moment this one starts it: set in the
   * 'active' event on the connection the worker's claim goes through, so Redis runs it first.
   */
  async function jobTakenOver(
    params: TrainParamsInput,
    extra: Partial<TrainingWorkerOptions>,
  ): Promise<string> {
    worker = await startTrainingWorker(
      workerOptions({ redis, prefix, dir }, { logger: logInto(logs), ...extra }),
    );
    worker.worker.once('active', (job: Job) => void redis.set(jobs.endings.lockKey(job.id!), STOLEN));
    const { view: queued } = await jobs.enqueue(trainParamsSchema.parse(params));
    return queued.id;
  }

  /** Until the worker let the job go, or (what must not happen) published a version for it. */
  const lettingGo = (id: string) =>
    until(`the worker to let job ${id} go`, async () => {
      if (logs.some((l) => l.jobId === id && l.msg.startsWith('training stopped after losing'))) return true;
      return (await store.findByJob(id)) ? true : undefined;
    });

  beforeAll(() => initBackend('wasm'));
  afterEach(async () => {
    await worker?.close();
    worker = undefined;
  });

  it('when another worker holds the lock at the claim to publish, then it publishes nothing and marks nothing; the next holder publishes once', async () => {
    // Renewal every 150 s: the claim, not the renewal, is what finds the lock gone.
    const id = await jobTakenOver(
      { epochs: 1, trainSize: 500, validationSize: 100 },
      { lockDuration: 600_000, stalledInterval: 500 },
    );
    await lettingGo(id);
    expect(await store.list()).toEqual([]);
    expect(logs.find((l) => l.msg.startsWith('lost the job lock'))?.noticedBy).toBe('the claim to publish');
    const after = await view(id);
    expect(after.state).toBe('active');
    expect(after.attempts).toBe(1);
    expect(await jobs.endings.read(id)).toBeNull();
    // The checkpoint stays for whoever holds the job now.
    expect(existsSync(join(dir, 'checkpoints', id, 'latest.json'))).toBe(true);

    // The other holder goes away: the job is stalled, picked up again, and published once.
    await redis.del(jobs.endings.lockKey(id));
    const final = await until('the job to finish', async () => {
      const v = await view(id);
      return v.finishedAt ? v : undefined;
    });
    expect(final.state).toBe('completed');
    const versions = await store.list();
    expect(versions.map((m) => m.jobId)).toEqual([id]);
    expect(final.result?.modelVersion).toBe(versions[0]!.version);
  });

  it('when its lock renewal fails mid-training, then the training thread stops at once, without publishing', async () => {
    const before = (await store.list()).length;
    // Renewal every 250 ms; 40 epochs would take minutes.
    const id = await jobTakenOver(
      { epochs: 40, trainSize: 2_000, validationSize: 100 },
      { lockDuration: 1_000, stalledInterval: 600_000 },
    );
    await lettingGo(id);
    expect((await store.list()).length).toBe(before);
    const lost = logs.filter((l) => l.msg.startsWith('lost the job lock') && l.jobId === id);
    expect(lost.map((l) => l.noticedBy)).toEqual(['lock renewal']);
    const after = await view(id);
    expect(after.state).toBe('active');
    expect(after.history.length).toBeLessThan(40);
    expect(await jobs.endings.read(id)).toBeNull();
  });
});
