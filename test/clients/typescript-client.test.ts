import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiError,
  createDigitClient,
  expectData,
  rawBody,
  type DigitClient,
} from '../../clients/typescript/src/index.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { startTrainingWorker } from '../../src/worker/training-worker.js';
import { mnistDigits, mnistPngs } from '../datasets/dataset-fixtures.js';
import { useTestApi } from '../helpers/api.js';
import { workerOptions } from '../helpers/training-worker.js';
import { until } from '../helpers/until.js';

const KEY = 'typescript-client-test-key';

/**
 * The generated client (clients/typescript) against the real API on a port and a real training
 * worker: what its README shows, run as a user would, with the types the compiler checks here.
 */
describe('the TypeScript client, against a running API and worker', () => {
  const api = useTestApi('ts-client', { auth: { apiKey: KEY } }, { listen: true });
  let worker: Awaited<ReturnType<typeof startTrainingWorker>> | undefined;
  let client: DigitClient;

  beforeAll(async () => {
    await initBackend('wasm');
    worker = await startTrainingWorker(workerOptions(api, { jobs: api.jobs }));
    client = createDigitClient({ baseUrl: `http://127.0.0.1:${api.port}`, apiKey: KEY });
  });
  afterAll(() => worker?.close());

  it('when a job is started without the key, then the answer is a typed 401 and expectData throws its code', async () => {
    const anonymous = createDigitClient({ baseUrl: `http://127.0.0.1:${api.port}` });
    const { data, error, response } = await anonymous.POST('/jobs', { body: { epochs: 1 } });
    expect(response.status).toBe(401);
    expect(data).toBeUndefined();
    expect(error).toMatchObject({ error: { code: 'unauthorized' } });
    const thrown = await expectData(anonymous.POST('/jobs', { body: { epochs: 1 } })).catch(
      (e: unknown) => e,
    );
    expect(thrown).toBeInstanceOf(ApiError);
    expect(thrown).toMatchObject({ status: 401, code: 'unauthorized' });
  });

  it(
    'when a job is started and followed through the client, then its version answers JSON pixels and PNG bytes',
    { timeout: 120_000 },
    async () => {
      const started = await expectData(
        client.POST('/jobs', { body: { epochs: 1, trainSize: 500, validationSize: 100, seed: 7 } }),
      );
      // Queued or already taken by the worker: the answer is the job's view either way.
      expect(['queued', 'active']).toContain(started.state);
      const finished = await until(`job ${started.id} to finish`, async () => {
        const view = await expectData(client.GET('/jobs/{id}', { params: { path: { id: started.id } } }));
        return view.finishedAt === null ? undefined : view;
      });
      expect(finished).toMatchObject({ state: 'completed', error: null });
      const version = finished.result!.modelVersion;

      const [digit] = await mnistDigits(7, 1);
      const fromPixels = await expectData(
        client.POST('/predict', {
          params: { query: { version } },
          body: { image: Array.from(digit!), scale: 'byte' },
        }),
      );
      expect(fromPixels.modelVersion).toBe(version);
      expect(fromPixels.predictions).toHaveLength(1);
      expect(fromPixels.predictions[0]!.probabilities).toHaveLength(10);

      const [png] = await mnistPngs(7, 1);
      const fromPng = await expectData(
        client.POST('/predict', { params: { query: { version } }, ...rawBody(png!, 'image/png') }),
      );
      expect(fromPng.modelVersion).toBe(version);
      expect(fromPng.predictions[0]!.class).toBe(String(fromPng.predictions[0]!.label));

      const models = await expectData(client.GET('/models'));
      expect(models.models.map((m) => m.version)).toContain(version);
    },
  );

  it('when the service refuses a request, then the client sees the status and code the docs list', async () => {
    const short = await client.POST('/predict', { body: { image: [0, 0, 0] } });
    expect(short.response.status).toBe(400);
    expect(short.error?.error.code).toBe('invalid_request');

    const missing = await client.GET('/jobs/{id}', { params: { path: { id: 'no-such-job' } } });
    expect(missing.response.status).toBe(404);
    expect(missing.error?.error).toMatchObject({ code: 'not_found', message: expect.any(String) });

    const thrown = await expectData(
      client.GET('/models/{version}', { params: { path: { version: 4242 } } }),
    ).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(ApiError);
    expect(thrown).toMatchObject({ status: 404, code: 'not_found' });
  });
});
