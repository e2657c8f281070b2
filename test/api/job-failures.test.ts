import { UnrecoverableError, Worker } from 'bullmq';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { clientFailure } from '../../src/jobs/job-failure.js';
import { TRAINING_QUEUE, type JobView } from '../../src/jobs/job-schema.js';
import { resolveDatasetDir } from '../../src/ml/data/dataset.js';
import { trainParamsSchema } from '../../src/ml/train-params.js';
import { startJobsApi, untilFinished } from '../helpers/jobs-api.js';
import { connect } from '../helpers/redis.js';

const TINY = { epochs: 1, trainSize: 100 };

describe('failed jobs show a code and a plain message', () => {
  const mnistDir = resolveDatasetDir('mnist');
  const reasons: Record<string, { dataset: string; error: Error }> = {
    internal: {
      dataset: 'mnist',
      error: new Error("EACCES: permission denied, mkdir '/srv/digits/models/.staging/v-7'"),
    },
    builtIn: {
      dataset: 'mnist',
      error: new UnrecoverableError(
        clientFailure(
          'dataset_unusable',
          `validationSize 70000 leaves no training images: ${mnistDir} has 60000 training images`,
        ),
      ),
    },
    own: {
      dataset: '/data/sets/mine',
      error: new UnrecoverableError(
        clientFailure(
          'dataset_unusable',
          '/data/sets/mine/train-labels-idx1-ubyte: label 12 at index 3 is outside 0..9',
        ),
      ),
    },
  };

  it('when jobs fail for server or client reasons, then GET /jobs, GET /jobs/:id and the event stream show no server paths or errno text', async () => {
    const { app, jobs, prefix } = await startJobsApi();
    for (const [id, { dataset }] of Object.entries(reasons))
      await jobs.queue.add(
        'train',
        { params: trainParamsSchema.parse({ ...TINY, dataset }) },
        { jobId: id, attempts: 1 },
      );
    const connection = connect();
    const worker = new Worker(
      TRAINING_QUEUE,
      async (job) => {
        throw reasons[job.id!]!.error;
      },
      { connection, prefix },
    );
    try {
      await untilFinished(jobs, Object.keys(reasons));
    } finally {
      await worker.close();
      await connection.quit();
    }
    const listed = (await request(app.server).get('/jobs').expect(200)).body.jobs as JobView[];
    const byId = Object.fromEntries(listed.map((j) => [j.id, j]));
    expect(byId.internal).toMatchObject({
      state: 'failed',
      errorCode: 'internal',
      error: 'training failed because of a problem on the server; its logs have the details (job internal)',
    });
    expect(byId.builtIn).toMatchObject({
      errorCode: 'dataset_unusable',
      error: 'validationSize 70000 leaves no training images: the mnist data set has 60000 training images',
    });
    // The client named this path itself.
    expect(byId.own).toMatchObject({
      errorCode: 'dataset_unusable',
      error: '/data/sets/mine/train-labels-idx1-ubyte: label 12 at index 3 is outside 0..9',
    });
    const one = (await request(app.server).get('/jobs/builtIn').expect(200)).body as JobView;
    expect(one.error).toBe(byId.builtIn!.error);
    const stream = await request(app.server)
      .get('/jobs/internal/events')
      .buffer(true)
      .parse((response, callback) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => callback(null, text));
      });
    const text = stream.body as string;
    expect(text).toContain('"errorCode":"internal"');
    expect(text).not.toMatch(/EACCES|\/srv\/|node_modules/);
    expect(JSON.stringify(listed)).not.toMatch(/EACCES|\/srv\/|node_modules|\[dataset_unusable\]/);
  });
});
