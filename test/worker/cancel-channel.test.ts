import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/jobs/job-schema.js';
import { cancelChannel } from '../../src/jobs/cancel-channel.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';
import { startTrainingWorker } from '../../src/worker/training-worker.js';
import { logInto } from '../helpers/logs.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { useTrainingJobs } from '../helpers/training-jobs.js';
import { workerOptions } from '../helpers/training-worker.js';
import { until } from '../helpers/until.js';

const GARBAGE = ['', '../../etc/passwd', 'job id with spaces', '{"jobId":"x"}', 'x'.repeat(300)];

describe('the cancel channel', () => {
  const { redis, prefix, jobs } = useTrainingJobs('cancel-channel');
  const dir = useTempDir('cancel-channel');
  const logs: { msg: string; problem?: string }[] = [];
  let worker: Awaited<ReturnType<typeof startTrainingWorker>>;

  beforeAll(async () => {
    worker = await startTrainingWorker(
      workerOptions({ redis, prefix, dir }, { logger: logInto(logs, 'warn') }),
    );
  });
  afterAll(async () => {
    await worker?.close();
  });

  it('when garbage is published on it, then the worker logs and drops each message, and a real cancel still stops a job', async () => {
    for (const message of GARBAGE) await redis.publish(cancelChannel(prefix), message);
    const dropped = await until('the bad messages to be logged', () => {
      const found = logs.filter((l) => l.msg === 'dropped a malformed pub/sub message');
      return found.length >= GARBAGE.length ? found : undefined;
    });
    expect(dropped).toHaveLength(GARBAGE.length);
    expect(dropped[1]!.problem).toContain('not a job id');

    const { view } = await jobs.enqueue(trainParamsSchema.parse({ epochs: 50, trainSize: 2_000 }));
    await until('the job to train', async () => ((await jobs.get(view.id))?.progress ? true : undefined));
    await jobs.cancel(view.id);
    const final = await until('the job to end', async () => {
      const v = (await jobs.get(view.id)) as JobView;
      return v.finishedAt ? v : undefined;
    });
    expect(final.state).toBe('cancelled');
    expect(final.history.length).toBeLessThan(50);
  });
});
