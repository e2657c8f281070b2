import { existsSync } from 'node:fs';
import { mkdir, readFile, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend/index.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';
import { FileCheckpoints } from '../../src/worker/file-checkpoints.js';
import { startTrainingWorker } from '../../src/worker/training-worker.js';
import { epochRecord, saveEpochs } from '../helpers/checkpoints.js';
import { logInto } from '../helpers/logs.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { useTrainingJobs } from '../helpers/training-jobs.js';
import { workerOptions } from '../helpers/training-worker.js';
import { until } from '../helpers/until.js';

describe('what crashes leave behind, met by a starting worker', () => {
  const { redis, prefix, jobs } = useTrainingJobs('leftovers');
  const dir = useTempDir('leftovers');
  const modelDir = join(dir, 'models');
  const logs: { msg: string; problem?: string; removed?: string[]; resumedFromEpoch?: number }[] = [];
  let worker: Awaited<ReturnType<typeof startTrainingWorker>> | undefined;

  const start = async () =>
    (worker = await startTrainingWorker(workerOptions({ redis, prefix, dir }, { logger: logInto(logs) })));

  beforeAll(() => initBackend('wasm'));
  afterEach(async () => {
    await worker?.close();
    worker = undefined;
  });

  /** A directory with a file in it, last touched `ageMs` ago. */
  async function entry(path: string, ageMs: number): Promise<string> {
    await mkdir(path, { recursive: true });
    await writeFile(join(path, 'weights.bin'), 'partial');
    const then = new Date(Date.now() - ageMs);
    await utimes(path, then, then);
    return path;
  }

  it('when staging and trash dirs were left by crashes, then a starting worker removes the old ones and leaves a live writer its fresh one', async () => {
    const twoHours = 2 * 3600_000;
    const crashedPublish = await entry(join(modelDir, '.staging', 'crashed-publish'), twoHours);
    const crashedDelete = await entry(join(modelDir, '.trash', '3-crashed-delete'), twoHours);
    const livePublish = await entry(join(modelDir, '.staging', 'live-publish'), 1000);
    await start();
    expect(existsSync(crashedPublish)).toBe(false);
    expect(existsSync(crashedDelete)).toBe(false);
    expect(await readFile(join(livePublish, 'weights.bin'), 'utf8')).toBe('partial');
    expect(logs.find((l) => l.removed)?.removed?.sort()).toEqual([crashedPublish, crashedDelete].sort());
  });

  it('when the newest checkpoint of a job is torn, then the job resumes from the one before it instead of failing every retry', async () => {
    const params = trainParamsSchema.parse({ epochs: 3, trainSize: 500, validationSize: 100 });
    const { view } = await jobs.enqueue(params);
    // What a worker killed by a power cut could leave: epoch 1 whole, epoch 2 written only in part.
    await saveEpochs(new FileCheckpoints(join(dir, 'checkpoints')), view.id, 2, { seed: params.seed });
    const weights = join(dir, 'checkpoints', view.id, 'epoch-2', 'weights.bin');
    await truncate(weights, 100);
    await start();
    const final = await until('the job to end', async () => {
      const v = await jobs.get(view.id);
      return v?.finishedAt ? v : undefined;
    });
    expect(final.state).toBe('completed');
    expect(final.attempts).toBe(1);
    expect(final.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    // Epoch 1 is the hand-made record: the job resumed from it.
    expect(final.history[0]?.loss).toBe(epochRecord(1).loss);
    const skipped = logs.filter((l) => l.msg.startsWith('skipped a corrupt checkpoint'));
    expect(skipped.map((l) => l.problem)).toEqual([expect.stringContaining(join(view.id, 'epoch-2'))]);
    expect(logs.find((l) => l.msg === 'training started')?.resumedFromEpoch).toBe(1);
  });
});
