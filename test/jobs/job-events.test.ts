import { afterAll, describe, expect, it } from 'vitest';
import { JobEvents, type JobEvent } from '../../src/jobs/job-events.js';
import { TRAINING_QUEUE, type JobProgress } from '../../src/jobs/job-schema.js';
import { useRedisPrefix } from '../helpers/redis.js';
import { until } from '../helpers/until.js';

const progress: JobProgress = {
  ...{ epoch: 1, epochs: 2, batch: 3, batches: 10, percent: 15, imagesPerSecond: 900, etaSeconds: 4 },
  ...{ loss: 0.5, accuracy: 0.8, history: [], batchHistory: [{ x: 0.3, loss: 0.6, accuracy: 0.75 }] },
};

/** Entries as BullMQ writes them to the queue's event stream, and garbage that only looks like them. */
const GARBAGE: string[][] = [
  ['event', 'progress', 'jobId', 'job-1', 'data', '{not json'],
  ['event', 'progress', 'jobId', 'job-1', 'data', '{"epoch":"one"}'],
  ['event', 'progress', 'jobId', 'job-1'],
  ['event', 'completed', 'jobId', '../../etc/passwd'],
  ['event', 'failed'],
];

describe('job events: the queue event stream', () => {
  const { redis, prefix } = useRedisPrefix('job-events');
  const key = `${prefix}:${TRAINING_QUEUE}:events`;
  const opened: JobEvents[] = [];
  afterAll(async () => {
    for (const events of opened) await events.close();
  });

  async function follow(jobId: string, events: JobEvents): Promise<JobEvent[]> {
    opened.push(events);
    await events.ready();
    const got: JobEvent[] = [];
    events.watch(jobId, (event) => got.push(event));
    return got;
  }

  it('when malformed entries are in the stream, then they are skipped and the events after them still arrive', async () => {
    const got = await follow('job-1', new JobEvents(redis, prefix));
    for (const fields of GARBAGE) await redis.xadd(key, '*', ...fields);
    await redis.xadd(key, '*', 'event', 'progress', 'jobId', 'job-1', 'data', JSON.stringify(progress));
    await redis.xadd(key, '*', 'event', 'completed', 'jobId', 'job-1', 'returnvalue', '{}');
    await until('the events after the garbage', () => (got.length >= 2 ? true : undefined));
    expect(got).toEqual([{ type: 'progress', data: progress }, { type: 'completed' }]);
  });

  it('when an entry is malformed, then it is reported with what is wrong; other kinds of entry are not', async () => {
    const problems: string[] = [];
    const got = await follow('job-2', new JobEvents(redis, prefix, { onInvalid: (p) => problems.push(p) }));
    for (const fields of GARBAGE) await redis.xadd(key, '*', ...fields);
    await redis.xadd(key, '*', 'event', 'active', 'jobId', 'job-2', 'prev', 'waiting');
    await redis.xadd(key, '*', 'event', 'failed', 'jobId', 'job-2', 'failedReason', 'boom');
    await until('the failure', () => (got.length >= 1 ? true : undefined));
    expect(got).toEqual([{ type: 'failed' }]);
    expect(problems).toHaveLength(GARBAGE.length);
    expect(problems[0]).toMatch(/\(progress\) skipped: data: is not JSON/);
    expect(problems[3]).toMatch(/jobId: not a job id/);
  });
});
