import { join } from 'node:path';
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import { trainAndPublish } from '../helpers/models.js';
import { ServiceMetrics } from '../../src/api/plugins/metrics.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { useTestApi } from '../helpers/api.js';

// One line of the Prometheus text format: name, optional labels, a value.
const SAMPLE =
  /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.]+(e[-+]?[0-9]+)?|NaN|[-+]Inf)$/;

describe('GET /metrics', () => {
  const api = useTestApi('metrics', async ({ dir }) => {
    (await trainAndPublish(new FileModelStore(join(dir, 'models')))).dispose();
    const metrics = new ServiceMetrics({
      jobCounts: () => api.jobs.counts(),
      trainingSpeeds: () => api.jobs.trainingSpeeds(),
    });
    return { metrics, predictor: { observe: metrics.predictorObserver } };
  });
  beforeAll(() => api.predictor.refresh());

  it('when scraped after some traffic, then every line parses and the service metrics are there', async () => {
    await request(api.app.server)
      .post('/predict')
      .send({ image: new Array(784).fill(0) })
      .expect(200);
    await request(api.app.server)
      .post('/predict')
      .send({ images: [new Array(784).fill(0), new Array(784).fill(0)] })
      .expect(200);
    await request(api.app.server).get('/jobs/unknown').expect(404);
    await request(api.app.server).post('/jobs').send({ epochs: 1, trainSize: 100 }).expect(202);
    const res = await request(api.app.server).get('/metrics').expect(200);
    expect(res.headers['content-type']).toContain('text/plain');
    const lines = res.text.split('\n').filter((l) => l && !l.startsWith('#'));
    for (const line of lines) expect(line).toMatch(SAMPLE);
    const text = res.text;
    expect(text).toMatch(
      /http_request_duration_seconds_count\{method="POST",route="\/predict",status="200"\} 2/,
    );
    expect(text).toMatch(
      /http_request_duration_seconds_count\{method="GET",route="\/jobs\/:id",status="404"\} 1/,
    );
    expect(text).toMatch(/predictions_total\{model_version="1"\} 3/);
    expect(text).toMatch(/predict_batch_size_count \d+/);
    expect(text).toMatch(/model_load_seconds_count 1/);
    expect(text).toMatch(/training_jobs\{state="queued"\} 1/);
    expect(text).toMatch(/training_queue_depth 1/);
    expect(text).toMatch(/training_images_per_second 0/);
    expect(text).toMatch(/process_cpu_seconds_total/);
  });
});
