import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import type { JobEvents } from '../../src/jobs/job-events.js';
import type { JobView } from '../../src/jobs/job-schema.js';
import { TrainingJobs } from '../../src/jobs/training-jobs.js';
import { subscribeVersions, type VersionEvent } from '../../src/registry/announcer.js';
import { startTrainingWorker } from '../../src/worker/training-worker.js';
import { useTestApi } from '../helpers/api.js';
import { routes, send } from '../helpers/route-requests.js';
import { workerOptions } from '../helpers/training-worker.js';

const TINY = { epochs: 2, trainSize: 1000, validationSize: 500 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('training jobs over HTTP', () => {
  // Data sets by absolute path only from under the test's own directory.
  const api = useTestApi('jobs', ({ dir }) => ({ datasetDirs: [dir], maxJobImages: 1_000_000 }));
  const { redis, prefix, dir } = api;
  let app: Awaited<ReturnType<typeof buildApp>>;
  let jobs: TrainingJobs;
  let jobEvents: JobEvents;
  let worker: Awaited<ReturnType<typeof startTrainingWorker>> | undefined;

  async function startWorker() {
    // Jobs train data-parallel on two threads, as on a 2-core machine by default.
    worker = await startTrainingWorker(workerOptions({ redis, prefix, dir }, { threads: 2 }));
  }

  async function waitFor(
    id: string,
    done: (view: JobView) => boolean,
    timeoutMs = 120_000,
  ): Promise<JobView[]> {
    const seen: JobView[] = [];
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const res = await request(app.server).get(`/jobs/${id}`).expect(200);
      seen.push(res.body as JobView);
      if (done(res.body as JobView)) return seen;
      await sleep(50);
    }
    throw new Error(`job ${id} did not get there in time; last state ${seen.at(-1)?.state}`);
  }

  beforeAll(async () => {
    ({ app, jobs, jobEvents } = api);
    await jobEvents.ready();
  });

  afterAll(async () => {
    await worker?.close();
  });

  it('when a job is cancelled while queued, then it never trains and shows cancelled', async () => {
    const created = await request(app.server).post('/jobs').send(TINY).expect(202);
    const id = (created.body as JobView).id;
    const cancelled = await request(app.server).delete(`/jobs/${id}`).expect(202);
    expect((cancelled.body as JobView).state).toBe('cancelled');
    await startWorker();
    const views = await waitFor(id, (v) => v.finishedAt !== null);
    expect(views.map((v) => v.state)).toEqual(views.map(() => 'cancelled'));
    expect(views.at(-1)!.result).toBeNull();
    expect(views.at(-1)!.history).toEqual([]);
  });

  it(
    'when a tiny job is posted, then it moves through queued, active with progress, completed, and a model version exists',
    { timeout: 120_000 },
    async () => {
      const announced: VersionEvent[] = [];
      const subscription = await subscribeVersions(redis, prefix, (event) => announced.push(event));
      const res = await request(app.server).post('/jobs').send(TINY).expect(202);
      const created = res.body as JobView;
      expect(res.headers.location).toBe(`/jobs/${created.id}`);
      expect(['queued', 'active']).toContain(created.state);
      expect(created.params).toMatchObject({
        ...TINY,
        architecture: 'seed',
        batchSize: 64,
        learningRate: 0.001,
      });

      const views = await waitFor(created.id, (v) => v.state === 'completed' || v.state === 'failed');
      const final = views.at(-1)!;
      expect(final.error).toBeNull();
      expect(final.state).toBe('completed');
      expect(views.some((v) => v.state === 'active' && v.progress !== null)).toBe(true);
      expect(final.history.map((h) => h.epoch)).toEqual([1, 2]);
      // The per-batch curve from the job's start, x ascending; each epoch's end is on it (16
      // batches an epoch: the one before is far enough back), with that epoch's figures.
      const xs = final.batchHistory.map((p) => p.x);
      expect(xs).toEqual([...xs].sort((a, b) => a - b));
      expect(xs[0]).toBeLessThan(1);
      for (const epoch of final.history)
        expect(final.batchHistory).toContainEqual({
          x: epoch.epoch,
          loss: Number(epoch.loss.toPrecision(5)),
          accuracy: Number(epoch.accuracy.toPrecision(5)),
        });
      expect(final.progress).not.toHaveProperty('batchHistory');
      expect(final.attempts).toBe(1);
      expect(final.startedAt).not.toBeNull();
      expect(final.finishedAt).not.toBeNull();
      const version = final.result!.modelVersion;
      expect(final.result!.metrics.accuracy.test).toBeGreaterThan(0.5);
      const metadata = JSON.parse(
        await readFile(join(dir, 'models', String(version), 'metadata.json'), 'utf8'),
      );
      expect(metadata).toMatchObject({
        version,
        jobId: created.id,
        backend: 'wasm',
        architecture: 'seed',
        parameterCount: 60_074,
        threads: 2,
      });
      expect(metadata.confusion).toHaveLength(10);
      const late = await request(app.server).delete(`/jobs/${created.id}`).expect(409);
      expect(late.body.error.message).toContain('already completed');
      // API processes hear of the new version on Redis pub/sub.
      // Polls until the announcement arrives; the test's timeout is the net.
      while (!announced.some((e) => e.version === version)) await sleep(20);
      expect(announced.map((e) => e.version)).toContain(version);
      await subscription.close();
    },
  );

  it('when the dataset directory does not exist, then the job fails once, without retries, saying why', async () => {
    const res = await request(app.server)
      .post('/jobs')
      .send({ ...TINY, dataset: join(dir, 'no-such-dataset') })
      .expect(202);
    const final = (await waitFor((res.body as JobView).id, (v) => v.finishedAt !== null)).at(-1)!;
    expect(final.state).toBe('failed');
    expect(final.attempts).toBe(1);
    expect(final.error).toMatch(/no-such-dataset does not exist/);
    expect(final.errorCode).toBe('dataset_unusable');
  });

  it.each([
    ['outside DATASET_DIRS', () => '/etc'],
    ['climbing out of DATASET_DIRS with ..', () => join(dir, '..', '..', 'etc')],
  ])('when the dataset is a directory %s, then 400 naming body.dataset and no job', async (_name, path) => {
    const before = (await jobs.list({ limit: 100, offset: 0 })).total;
    const res = await request(app.server)
      .post('/jobs')
      .send({ ...TINY, dataset: path() })
      .expect(400);
    expect(res.body.error.message).toContain('is not under a directory this service reads from');
    expect(res.body.error.details).toEqual([{ field: 'body.dataset', message: res.body.error.message }]);
    expect((await jobs.list({ limit: 100, offset: 0 })).total).toBe(before);
  });

  it.each([
    [{ epochs: 100 }, '5,000,000'],
    [{ epochs: 17, validationSize: 0 }, '1,020,000'],
    [{ epochs: 30, trainSize: 40_000 }, '1,200,000'],
  ])(
    'when a job asks for more training than JOB_MAX_IMAGES (%j), then 400 saying how much and no job',
    async (body, images) => {
      const before = (await jobs.list({ limit: 100, offset: 0 })).total;
      const res = await request(app.server).post('/jobs').send(body).expect(400);
      expect(res.body.error.message).toContain(`epochs x training images is ${images}`);
      expect(res.body.error.message).toContain('at most 1,000,000 per job (JOB_MAX_IMAGES)');
      expect(res.body.error.details[0].field).toBe('body.epochs');
      expect((await jobs.list({ limit: 100, offset: 0 })).total).toBe(before);
    },
  );

  it('when DATASET_DIRS is not set, then an absolute dataset path is refused, naming the data sets it trains on', async () => {
    const strict = await buildApp({ jobs, jobEvents });
    await strict.ready();
    try {
      const res = await request(strict.server)
        .post('/jobs')
        .send({ ...TINY, dataset: dir });
      expect(res.status).toBe(400);
      expect(res.body.error.message).toContain("only on 'mnist', 'fashion-mnist' and uploaded datasets");
    } finally {
      await strict.close();
    }
  });

  it('when the same Idempotency-Key is posted twice, then the second returns the first job', async () => {
    const key = `key-${Date.now()}`;
    const first = await request(app.server).post('/jobs').set('Idempotency-Key', key).send(TINY).expect(202);
    const again = await request(app.server).post('/jobs').set('Idempotency-Key', key).send(TINY).expect(200);
    expect((again.body as JobView).id).toBe((first.body as JobView).id);
    const other = await request(app.server)
      .post('/jobs')
      .set('Idempotency-Key', key)
      .send({ ...TINY, epochs: 3 });
    expect(other.status).toBe(409);
    expect(other.body.error.message).toContain('Idempotency-Key');
    await waitFor((first.body as JobView).id, (v) => v.finishedAt !== null);
  });

  it(
    'when an active job is cancelled, then it stops, ends cancelled and publishes no model',
    { timeout: 120_000 },
    async () => {
      const res = await request(app.server)
        .post('/jobs')
        .send({ epochs: 20, trainSize: 5000, validationSize: 500 })
        .expect(202);
      const id = (res.body as JobView).id;
      await waitFor(id, (v) => v.state === 'active' && v.progress !== null);
      await request(app.server).delete(`/jobs/${id}`).expect(202);
      const final = (await waitFor(id, (v) => v.finishedAt !== null)).at(-1)!;
      expect(final.state).toBe('cancelled');
      expect(final.result).toBeNull();
      expect(final.history.length).toBeLessThan(20);
      expect(existsSync(join(dir, 'checkpoints', id))).toBe(false);
      const again = await request(app.server).delete(`/jobs/${id}`);
      expect(again.status).toBe(409);
    },
  );

  it('when a client follows the event stream, then it gets progress events and ends with the final state', async () => {
    // The worker waits until the stream is open, so the progress happens while the client watches
    // however fast the job would otherwise finish.
    await worker!.worker.pause();
    const res = await request(app.server).post('/jobs').send(TINY).expect(202);
    const id = (res.body as JobView).id;
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const stream = await fetch(`${address}/jobs/${id}/events`);
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!text.includes('event: state') && (text + value).includes('event: state')) worker!.worker.resume();
      text += value;
    }
    const events = text
      .split('\n\n')
      .filter((block) => block.startsWith('event:'))
      .map((block) => ({
        event: block.split('\n')[0]!.slice(7),
        data: JSON.parse(block.split('\n')[1]!.slice(6)),
      }));
    expect(events[0]!.event).toBe('state');
    const progress = events.filter((e) => e.event === 'progress');
    expect(progress.length).toBeGreaterThan(0);
    // Each progress event carries the curve from the job's start: each one the last one and more.
    type Curve = JobView['batchHistory'];
    const curves = progress.map((e) => (e.data as { batchHistory: Curve }).batchHistory);
    for (const [i, curve] of curves.entries()) {
      const before = curves[i - 1] ?? [];
      expect(curve.slice(0, before.length)).toEqual(before);
    }
    expect(curves.at(-1)!.at(-1)!.x).toBe(2);
    expect(events.at(-1)).toMatchObject({ event: 'end', data: { id, state: 'completed' } });
  });

  it('when jobs are listed, then they come newest first and filter by state', async () => {
    const all = await request(app.server).get('/jobs?limit=100').expect(200);
    const created = (all.body.jobs as JobView[]).map((j) => j.createdAt);
    expect(created).toEqual([...created].sort().reverse());
    expect(all.body.total).toBeGreaterThanOrEqual(4);
    const done = await request(app.server).get('/jobs?state=completed').expect(200);
    expect((done.body.jobs as JobView[]).every((j) => j.state === 'completed')).toBe(true);
    // Jobs live in Redis: a freshly started API process reads the same list.
    const restarted = new TrainingJobs({ connection: redis, prefix });
    const fresh = await buildApp({ jobs: restarted, jobEvents });
    await fresh.ready();
    const again = await request(fresh.server).get('/jobs?limit=100').expect(200);
    expect(again.body.jobs.map((j: JobView) => j.id)).toEqual(all.body.jobs.map((j: JobView) => j.id));
    await fresh.close();
    await restarted.close();
    const page = await request(app.server).get('/jobs?limit=1&offset=1').expect(200);
    expect(page.body.jobs).toHaveLength(1);
    expect(page.body.jobs[0].id).toBe(all.body.jobs[1].id);
  });

  it('when the job id is unknown, then GET, DELETE and the event stream answer 404 with JSON', async () => {
    for (const unknown of [
      routes.job('GET', 'nope'),
      routes.job('DELETE', 'nope'),
      routes.jobEvents('nope'),
    ]) {
      const res = await send(app.server, unknown).expect(404);
      expect(res.body.error).toMatchObject({ code: 'not_found', message: 'job nope not found' });
    }
  });

  it.each([
    [{ epochs: 'ten' }, 'body.epochs'],
    [{ epochs: 0 }, 'body.epochs'],
    [{ epochs: 101 }, 'body.epochs'],
    [{ epochs: 1.5 }, 'body.epochs'],
    [{ batchSize: 0 }, 'body.batchSize'],
    [{ batchSize: 4096 }, 'body.batchSize'],
    [{ learningRate: 0 }, 'body.learningRate'],
    [{ learningRate: 2 }, 'body.learningRate'],
    [{ learningRate: -0.1 }, 'body.learningRate'],
    [{ optimizer: 'adagrad' }, 'body.optimizer'],
    [{ architecture: 'resnet' }, 'body.architecture'],
    [{ dataset: 'relative/path' }, 'body.dataset'],
    [{ seed: -1 }, 'body.seed'],
    [{ trainSize: 60_001 }, 'body.trainSize'],
    [{ validationSize: 'many' }, 'body.validationSize'],
    [{ augment: 'yes' }, 'body.augment'],
    [{ epochs: 1e308 }, 'body.epochs'],
    [{ unknownKey: 1 }, 'unknownKey'],
    [[1, 2, 3], 'body'],
    ['"a string"', 'body'],
  ])('when the body is %j, then it answers 400 naming %s', async (body, field) => {
    const res = await send(app.server, routes.postJob(body));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.message).toContain(field);
  });

  it.each([
    { name: 'not JSON', body: '{"epochs": 2', type: 'application/json', status: 400 },
    { name: 'empty', body: '', type: 'application/json', status: 400 },
    {
      name: 'over the body limit',
      body: JSON.stringify({ epochs: 1, pad: 'x'.repeat(2 * 1024 * 1024) }),
      type: 'application/json',
      status: 413,
    },
    { name: 'XML', body: '<epochs>2</epochs>', type: 'application/xml', status: 415 },
    { name: 'form data', body: 'epochs=2', type: 'application/x-www-form-urlencoded', status: 415 },
  ])('when the body is $name, then it answers $status with a JSON error', async ({ body, type, status }) => {
    const res = await send(app.server, routes.postJob(body, type));
    expect(res.status).toBe(status);
    expect(typeof res.body.error.message).toBe('string');
    if (status === 415) {
      expect(res.body.error.message).toBe(`Content-Type ${type} is not accepted here; send application/json`);
    }
  });
});
