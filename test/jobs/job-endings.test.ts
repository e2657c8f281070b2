import { Worker } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCK_LOST } from '../../src/jobs/job-endings.js';
import { TRAINING_QUEUE } from '../../src/jobs/job-schema.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';
import { useTrainingJobs } from '../helpers/training-jobs.js';

describe('job endings: the claim to publish is fenced with the job lock', () => {
  const { redis, prefix, jobs } = useTrainingJobs('fence');
  const params = trainParamsSchema.parse({ epochs: 1, trainSize: 100 });
  // A real BullMQ worker taking jobs by hand: it locks each job it takes with the token it is given.
  const holder = new Worker(TRAINING_QUEUE, null, { connection: redis.duplicate(), prefix });

  afterAll(async () => {
    await holder.close();
  });

  async function lockedJob(token: string): Promise<string> {
    const { view } = await jobs.enqueue(params);
    const job = await holder.getNextJob(token);
    expect(job?.id).toBe(view.id);
    expect(await redis.get(jobs.endings.lockKey(view.id))).toBe(token);
    return view.id;
  }

  it('when the worker still holds the lock, then its claim to publish holds', async () => {
    const id = await lockedJob('token-a');
    expect(await jobs.endings.claimPublishing(id, 'token-a')).toBe('publishing');
    expect(await jobs.endings.read(id)).toBe('publishing');
  });

  it('when another worker holds the lock now, then the claim is refused and nothing is written', async () => {
    const id = await lockedJob('token-b');
    // What a replacement's takeover leaves: the lock holds another token.
    await redis.set(jobs.endings.lockKey(id), 'token-of-the-replacement');
    expect(await jobs.endings.claimPublishing(id, 'token-b')).toBe(LOCK_LOST);
    expect(await jobs.endings.read(id)).toBeNull();
    // The job can still be cancelled: the refused claim marked nothing.
    expect((await jobs.cancel(id))!.state).toBe('cancelled');
  });

  it('when the lock has lapsed and nobody holds it, then the claim is refused too', async () => {
    const id = await lockedJob('token-c');
    await redis.del(jobs.endings.lockKey(id));
    expect(await jobs.endings.claimPublishing(id, 'token-c')).toBe(LOCK_LOST);
    expect(await jobs.endings.read(id)).toBeNull();
  });

  it('when the job was cancelled first, then the lock holder is told cancelled', async () => {
    const id = await lockedJob('token-d');
    await jobs.endings.claim(id, 'cancelled');
    expect(await jobs.endings.claimPublishing(id, 'token-d')).toBe('cancelled');
  });
});
