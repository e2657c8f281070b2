import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend/index.js';
import { DIGIT_CLASSES } from '../../src/ml/data/dataset.js';
import { startTrainingWorker } from '../../src/worker/training-worker.js';
import { mnistPngs } from '../datasets/dataset-fixtures.js';
import { useTestApi } from '../helpers/api.js';
import { untilJob } from '../helpers/training-jobs.js';
import { workerOptions } from '../helpers/training-worker.js';
import { zipArchive } from '../helpers/zip-archive.js';

/** Folder name -> the MNIST digit its images show. */
const FOLDERS = { zero: 0, one: 1, seven: 7 } as const;

/**
 * The whole way a user takes: upload a folder-per-class zip, train on it, predict with class
 * names; then fine-tune that version on another dataset (digits -> all ten digits).
 */
describe('a dataset uploaded over HTTP, trained on by a worker, served with its class names', () => {
  const api = useTestApi('dataset-training');
  let worker: Awaited<ReturnType<typeof startTrainingWorker>>;

  beforeAll(async () => {
    await initBackend('wasm');
    worker = await startTrainingWorker(workerOptions(api, { jobs: api.jobs }));
  });
  afterAll(() => worker?.close());

  const server = () => api.app.server;
  const trained = async (body: object) => {
    const job = await request(server()).post('/jobs').send(body).expect(202);
    const final = await untilJob(api.jobs, job.body.id, (view) => view.finishedAt !== null);
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    return final.result!.modelVersion;
  };

  let datasetId: string;
  let version: number;

  it(
    'when a folder-per-class zip is trained on, then /predict answers with its class names',
    { timeout: 120_000 },
    async () => {
      const entries = [];
      for (const [folder, digit] of Object.entries(FOLDERS)) {
        const pngs = await mnistPngs(digit, 200);
        entries.push(...pngs.map((data, i) => ({ name: `digits/${folder}/${i}.png`, data })));
      }
      const upload = await request(server())
        .post('/datasets?name=Three%20digits')
        .set('content-type', 'application/zip')
        .send(zipArchive(entries))
        .expect(201);
      datasetId = upload.body.id;
      // The wrapping folder is not a class; classes come sorted by name, as torchvision's ImageFolder.
      expect(upload.body.classes).toEqual(['one', 'seven', 'zero']);

      version = await trained({ dataset: datasetId, epochs: 3, seed: 3 });
      const metadata = (await request(server()).get(`/models/${version}`).expect(200)).body;
      expect(metadata.classes).toEqual(['one', 'seven', 'zero']);
      expect(metadata.params).toMatchObject({ dataset: datasetId });
      expect(metadata.confusion).toHaveLength(3);

      await api.predictor.refresh();
      // Digits the upload did not hold (the 200 after those it took of each), as PNGs.
      let right = 0;
      let asked = 0;
      for (const [folder, digit] of Object.entries(FOLDERS)) {
        for (const png of await mnistPngs(digit, 20, 200)) {
          const res = await request(server())
            .post('/predict')
            .set('content-type', 'image/png')
            .send(png)
            .expect(200);
          const [prediction] = res.body.predictions;
          expect(prediction.probabilities).toHaveLength(3);
          expect(prediction.class).toBe(metadata.classes[prediction.label]);
          asked++;
          if (prediction.class === folder) right++;
        }
      }
      // Three well-separated digits after three epochs: a model that learnt them gets nearly all.
      expect(right / asked).toBeGreaterThanOrEqual(0.9);
    },
  );

  it(
    'when that version is fine-tuned on MNIST, then the new one has ten classes and names its base',
    { timeout: 120_000 },
    async () => {
      const tuned = await trained({
        dataset: 'mnist',
        baseVersion: version,
        epochs: 1,
        trainSize: 2000,
        validationSize: 0,
      });
      const metadata = (await request(server()).get(`/models/${tuned}`).expect(200)).body;
      expect(metadata.params).toMatchObject({ baseVersion: version, dataset: 'mnist' });
      expect(metadata.classes).toEqual(DIGIT_CLASSES);
      const [seven] = await mnistPngs(7, 1, 300);
      const res = await request(server())
        .post(`/predict?version=${tuned}`)
        .set('content-type', 'image/png')
        .send(seven!)
        .expect(200);
      expect(res.body.predictions[0].probabilities).toHaveLength(10);
      expect(res.body.predictions[0].class).toBe(String(res.body.predictions[0].label));
    },
  );

  it('when the dataset is deleted once its jobs are done, then its models keep their class names', async () => {
    await request(server()).delete(`/datasets/${datasetId}`).expect(204);
    const metadata = (await request(server()).get(`/models/${version}`).expect(200)).body;
    expect(metadata.classes).toEqual(['one', 'seven', 'zero']);
  });
});
