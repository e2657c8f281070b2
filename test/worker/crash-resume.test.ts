import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { TRAINING_QUEUE, type JobView } from '../../src/jobs/job-schema.js';
import { trainParamsSchema, type TrainParamsInput } from '../../src/ml/train-params.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { exited } from '../helpers/processes.js';
import { REDIS_URL } from '../helpers/redis.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { untilJob, useTrainingJobs } from '../helpers/training-jobs.js';

describe('worker processes', () => {
  const { redis, prefix, jobs } = useTrainingJobs('crash');
  const dir = useTempDir('crash');
  const children: ChildProcess[] = [];

  /**
   * A real worker process, as `npm run start:worker` starts it, with a short lock so crashes show
   * fast, training each job on two data-parallel threads (whatever the machine's cores).
   */
  function startWorker(env: Record<string, string> = {}): ChildProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker/main.ts'], {
      env: {
        ...process.env,
        REDIS_URL,
        REDIS_PREFIX: prefix,
        MODEL_DIR: join(dir, 'models'),
        CHECKPOINT_DIR: join(dir, 'checkpoints'),
        TF_BACKEND: 'wasm',
        WORKER_LOCK_MS: '1500',
        TRAINING_THREADS: '2',
        LOG_LEVEL: 'warn',
        ...env,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(child);
    return child;
  }

  const waitFor = (id: string, done: (view: JobView) => boolean) => untilJob(jobs, id, done, 150_000);

  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.kill('SIGKILL');
      await exited(child);
    }
  });

  it(
    'when a worker is SIGKILLed during epoch 2, then another resumes from the epoch-1 checkpoint and one model version results',
    { timeout: 180_000 },
    async () => {
      const store = new FileModelStore(join(dir, 'models'));
      const before = (await store.list()).length;
      const first = startWorker();
      const { view } = await jobs.enqueue(
        trainParamsSchema.parse({ epochs: 3, trainSize: 8000, validationSize: 500 }),
      );
      const midEpoch2 = await waitFor(
        view.id,
        (v) => v.history.length === 1 && (v.progress?.epoch ?? 0) === 2 && (v.progress?.batch ?? 0) > 5,
      );
      first.kill('SIGKILL');
      await exited(first);
      expect(existsSync(join(dir, 'checkpoints', view.id, 'latest.json'))).toBe(true);

      startWorker();
      const final = await waitFor(view.id, (v) => v.finishedAt !== null);
      expect(final.state).toBe('completed');
      expect(final.attempts).toBeGreaterThanOrEqual(2);
      expect(final.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
      // Resumed, not restarted: epoch 1 is the record the killed worker wrote.
      expect(final.history[0]).toEqual(midEpoch2.history[0]);
      const versions = await store.list();
      expect(versions.length - before).toBe(1);
      expect(versions.at(-1)!.jobId).toBe(view.id);
      expect(versions.at(-1)!.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
      expect(versions.at(-1)!.threads).toBe(2);
      expect(existsSync(join(dir, 'checkpoints', view.id))).toBe(false);
    },
  );

  /** Failures and stalls so far: what uses up a job's attempts (a hand-over must not). */
  async function attemptsUsed(id: string): Promise<number> {
    const queue = new Queue(TRAINING_QUEUE, { connection: redis, prefix });
    try {
      const job = (await queue.getJob(id))!;
      return job.attemptsMade + job.stalledCounter;
    } finally {
      await queue.close();
    }
  }

  /**
   * Starts a worker with this shutdown grace time, queues `params`, sends SIGTERM once epoch 2 (or a
   * later one) is a few batches in, and checks the hand-over: exit 0, the job queued again, no attempt used.
   * Then another worker finishes it. Returns the job as handed back and as finished.
   */
  async function handOverMidEpoch2(
    graceMs: number,
    params: TrainParamsInput,
  ): Promise<{ handedBack: JobView; final: JobView }> {
    const first = startWorker({ WORKER_SHUTDOWN_GRACE_MS: String(graceMs) });
    const { view } = await jobs.enqueue(trainParamsSchema.parse(params));
    // At least one epoch saved and the next under way (polled: it may be seen in a later epoch).
    await waitFor(view.id, (v) => v.history.length >= 1 && (v.progress?.batch ?? 0) > 3);

    first.kill('SIGTERM');
    expect(await exited(first)).toBe(0);
    const handedBack = (await jobs.get(view.id))!;
    expect(handedBack.state).toBe('queued');
    expect(await attemptsUsed(view.id)).toBe(0);

    startWorker();
    const final = await waitFor(view.id, (v) => v.finishedAt !== null);
    expect(final.state).toBe('completed');
    return { handedBack, final };
  }

  it(
    'when a worker gets SIGTERM mid-epoch, then it finishes and saves that epoch, hands the job back and exits; another worker resumes from the next one',
    { timeout: 180_000 },
    async () => {
      const store = new FileModelStore(join(dir, 'models'));
      const before = (await store.list()).length;
      // Six epochs, so that the signal lands in some epoch before the last however slow this
      // process is to send it: the verdict holds for whichever one that is.
      const { handedBack, final } = await handOverMidEpoch2(60_000, {
        epochs: 6,
        trainSize: 2000,
        validationSize: 500,
      });
      // The epoch under way was finished and saved before the worker let go.
      const saved = handedBack.history.length;
      expect(saved).toBeGreaterThanOrEqual(2);
      expect(saved).toBeLessThan(6);
      expect(handedBack.history.map((h) => h.epoch)).toEqual(Array.from({ length: saved }, (_, i) => i + 1));
      expect(final.history.slice(0, saved)).toEqual(handedBack.history);
      expect(final.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4, 5, 6]);
      const versions = await store.list();
      expect(versions.length - before).toBe(1);
      expect(versions.at(-1)!.jobId).toBe(final.id);
    },
  );

  it(
    'when the shutdown grace time is up mid-epoch, then the worker stops within a batch and the job resumes from the last saved epoch',
    { timeout: 180_000 },
    async () => {
      const store = new FileModelStore(join(dir, 'models'));
      const { handedBack, final } = await handOverMidEpoch2(0, {
        epochs: 2,
        trainSize: 20_000,
        validationSize: 500,
      });
      // Stopped inside epoch 2 (it was not finished and saved first).
      expect(handedBack.history.map((h) => h.epoch)).toEqual([1]);
      expect(final.history[0]).toEqual(handedBack.history[0]);
      // The per-batch curve goes on from the saved epoch: the first attempt's points up to it stay,
      // the ones it drew past it are drawn again (so x still only rises).
      const saved = handedBack.batchHistory.filter((p) => p.x <= 1);
      expect(saved.length).toBeGreaterThan(0);
      expect(final.batchHistory.slice(0, saved.length)).toEqual(saved);
      const xs = final.batchHistory.map((p) => p.x);
      expect(xs).toEqual([...new Set(xs)].sort((a, b) => a - b));
      // The epoch-2 end is kept unless a point within 2/99 of an epoch before it was.
      expect(xs.at(-1)).toBeGreaterThanOrEqual(2 - 2 / 99);
      expect((await store.get(final.result!.modelVersion))!.jobId).toBe(final.id);
    },
  );

  it(
    'when two workers finish at the same time, then each job gets its own complete version',
    { timeout: 180_000 },
    async () => {
      const store = new FileModelStore(join(dir, 'models'));
      const before = new Set((await store.list()).map((m) => m.version));
      startWorker();
      startWorker();
      const params = trainParamsSchema.parse({ epochs: 1, trainSize: 2000, validationSize: 200 });
      const [a, b] = await Promise.all([jobs.enqueue(params), jobs.enqueue(params)]);
      const finals = await Promise.all(
        [a, b].map(({ view }) => waitFor(view.id, (v) => v.finishedAt !== null)),
      );
      expect(finals.map((f) => f.state)).toEqual(['completed', 'completed']);
      const versions = finals.map((f) => f.result!.modelVersion);
      expect(new Set(versions).size).toBe(2);
      for (const v of versions) {
        expect(before.has(v)).toBe(false);
        const metadata = await store.get(v);
        expect(metadata).not.toBeNull();
        expect(existsSync(join(store.dir(v), 'weights.bin'))).toBe(true);
      }
      expect(new Set(versions.map((v) => finals.find((f) => f.result!.modelVersion === v)!.id)).size).toBe(2);
    },
  );
});
