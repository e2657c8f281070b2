import { UnrecoverableError, Worker } from 'bullmq';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { TRAINING_QUEUE, type JobView } from '../../src/jobs/job-schema.js';
import { idempotencyLockKey } from '../../src/jobs/training-jobs.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';
import { startJobsApi, untilFinished } from '../helpers/jobs-api.js';
import { connect } from '../helpers/redis.js';

const TINY = { epochs: 1, trainSize: 100 };

describe('bounds on what job requests can cause', () => {
  it('when JOB_MAX_WAITING jobs are waiting, then one more is 429 with Retry-After, and a retry with its Idempotency-Key still answers', async () => {
    const { app } = await startJobsApi({ maxWaiting: 3 });
    await request(app.server).post('/jobs').set('idempotency-key', 'first').send(TINY).expect(202);
    await request(app.server).post('/jobs').send(TINY).expect(202);
    await request(app.server).post('/jobs').send(TINY).expect(202);
    const full = await request(app.server).post('/jobs').send(TINY).expect(429);
    expect(full.body.error.code).toBe('queue_full');
    expect(full.body.error.message).toContain('3 training jobs are waiting');
    expect(full.body.error.message).toContain('JOB_MAX_WAITING=3');
    expect(Number(full.headers['retry-after'])).toBeGreaterThan(0);
    await request(app.server).post('/jobs').set('idempotency-key', 'first').send(TINY).expect(200);
    expect((await request(app.server).get('/jobs').expect(200)).body.total).toBe(3);
  });

  it('when another request holds the Idempotency-Key, then 409 with Retry-After, not a 500', async () => {
    const { app, prefix, redis } = await startJobsApi({ idempotencyWaitMs: 100 });
    // Held by a request that never lets go, for as long as this test runs.
    await redis.set(idempotencyLockKey(prefix, 'held'), 'another request', 'PX', 600_000);
    const res = await request(app.server).post('/jobs').set('idempotency-key', 'held').send(TINY);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('idempotency_in_progress');
    expect(res.body.error.message).toContain('Idempotency-Key');
    expect(res.headers['retry-after']).toBe('1');
    await redis.del(idempotencyLockKey(prefix, 'held'));
    await request(app.server).post('/jobs').set('idempotency-key', 'held').send(TINY).expect(202);
  });
});

describe('GET /jobs pages in Redis', () => {
  const params = trainParamsSchema.parse(TINY);

  it('when 300 jobs are retained, then a page reads only its own jobs from Redis, newest first, with the total', async () => {
    const { app, jobs, redis } = await startJobsApi();
    const base = Date.now() - 1_000_000;
    await jobs.queue.addBulk(
      Array.from({ length: 300 }, (_, i) => ({
        name: 'train',
        data: { params },
        opts: { jobId: `job-${String(i).padStart(3, '0')}`, timestamp: base + i * 1000 },
      })),
    );
    const before = redis.stream.bytesRead;
    const page = await request(app.server).get('/jobs?limit=5&offset=10').expect(200);
    const read = redis.stream.bytesRead - before;
    expect(page.body.jobs.map((j: JobView) => j.id)).toEqual([
      'job-289',
      'job-288',
      'job-287',
      'job-286',
      'job-285',
    ]);
    expect(page.body).toMatchObject({ total: 300, limit: 5, offset: 10 });
    // Five job views; every retained job would be over 100 KB.
    expect(read).toBeLessThan(30_000);

    await request(app.server).delete('/jobs/job-299').expect(202);
    await request(app.server).delete('/jobs/job-000').expect(202);
    const cancelled = await request(app.server).get('/jobs?state=cancelled').expect(200);
    expect(cancelled.body.jobs.map((j: JobView) => j.id)).toEqual(['job-299', 'job-000']);
    expect(cancelled.body.total).toBe(2);
    const queued = await request(app.server).get('/jobs?state=queued&limit=1').expect(200);
    expect(queued.body).toMatchObject({ total: 298, jobs: [{ id: 'job-298', state: 'queued' }] });
    const beyond = await request(app.server).get('/jobs?offset=300').expect(200);
    expect(beyond.body).toMatchObject({ total: 300, jobs: [] });
    await request(app.server).get('/jobs?limit=101').expect(400);
  });

  it('when jobs have completed and failed, then each state lists its own, and failed excludes cancelled ones', async () => {
    const { app, jobs, prefix } = await startJobsApi();
    const ids = ['done', 'broken', 'stopped'];
    for (const [i, id] of ids.entries())
      await jobs.queue.add(
        'train',
        { params },
        { jobId: id, timestamp: Date.now() - 10_000 + i, attempts: 1 },
      );
    const connection = connect();
    const worker = new Worker(
      TRAINING_QUEUE,
      async (job) => {
        if (job.id === 'broken') throw new Error('ENOSPC: no space left on device');
        if (job.id === 'stopped') throw new UnrecoverableError('cancelled on request');
        return {};
      },
      { connection, prefix },
    );
    try {
      await untilFinished(jobs, ids);
    } finally {
      await worker.close();
      await connection.quit();
    }
    const ofState = async (state: string) =>
      (await request(app.server).get(`/jobs?state=${state}`).expect(200)).body.jobs.map((j: JobView) => j.id);
    expect(await ofState('completed')).toEqual(['done']);
    expect(await ofState('failed')).toEqual(['broken']);
    expect(await ofState('cancelled')).toEqual(['stopped']);
    expect((await request(app.server).get('/jobs').expect(200)).body.total).toBe(3);
  });
});
