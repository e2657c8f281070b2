import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { DatasetCatalog } from '../../src/datasets/dataset-catalog.js';
import { FileDatasetStore } from '../../src/datasets/file-dataset-store.js';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import { foldersZip, mnistPngs, TEST_LIMITS } from '../datasets/dataset-fixtures.js';
import { useTestApi } from '../helpers/api.js';
import { trainingReportFixture } from '../helpers/training-report.js';
import { sleep } from '../helpers/until.js';
import { zipArchive } from '../helpers/zip-archive.js';

const API_KEY = 'a-long-enough-datasets-key';
const auth = { authorization: `Bearer ${API_KEY}` };

/** Kaggle's digit-recognizer layout: a header, then `label` and 784 pixels per row. */
function csv(rows: number[][]): string {
  const header = ['label', ...Array.from({ length: IMAGE_PIXELS }, (_, i) => `pixel${i}`)].join(',');
  return [header, ...rows.map((row) => row.join(','))].join('\n') + '\n';
}

const csvRow = (label: number, ink: number) => [
  label,
  ...Array.from({ length: IMAGE_PIXELS }, (_, i) => (i % 7 === 0 ? ink : 0)),
];

describe('/datasets: upload, list, show, delete', () => {
  const api = useTestApi('datasets', {
    auth: { apiKey: API_KEY },
    datasetLimits: { ...TEST_LIMITS, maxBytes: 256 * 1024 },
  });
  const server = () => api.app.server;

  const upload = (body: Buffer | string, query: string, type = 'application/zip') =>
    request(server())
      .post(`/datasets?${query}`)
      .set({ ...auth, 'content-type': type })
      .send(body);

  /** Nothing of a refused upload is left: not listed, nothing in staging. */
  async function expectNothingLeft(listed: string[]): Promise<void> {
    const res = await request(server()).get('/datasets').expect(200);
    expect(
      res.body.datasets.filter((d: { builtIn: boolean }) => !d.builtIn).map((d: { id: string }) => d.id),
    ).toEqual(listed);
    const staging = await readdir(join(api.datasets.store.location, '.staging')).catch(() => []);
    expect(staging).toEqual([]);
  }

  let letters: { id: string };

  it('when a zip of class folders is uploaded, then 201 with its record, and it is listed after the built-ins', async () => {
    const res = await upload(await foldersZip({ B: 1, A: 0, C: 2 }), 'name=Letters').expect(201);
    letters = res.body;
    expect(res.headers.location).toBe(`/datasets/${res.body.id}`);
    expect(res.body).toMatchObject({
      name: 'Letters',
      builtIn: false,
      format: 'folders',
      classes: ['A', 'B', 'C'],
      counts: { train: 36, test: 6 },
      skipped: [],
      skippedCount: 0,
    });
    expect(res.body.id).toMatch(/^letters-[a-z0-9]{8}$/);
    const list = await request(server()).get('/datasets').expect(200);
    const ids = list.body.datasets.map((d: { id: string }) => d.id);
    expect(ids[0]).toBe('mnist');
    expect(ids.at(-1)).toBe(res.body.id);
    const mnist = list.body.datasets[0];
    expect(mnist).toMatchObject({ builtIn: true, counts: { train: 60_000, test: 10_000 } });
    expect(mnist.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const one = await request(server()).get(`/datasets/${res.body.id}`).expect(200);
    expect(one.body).toEqual(res.body);
  });

  it('when its samples are asked for, then a PNG with a row of 28 px per class', async () => {
    const res = await request(server()).get(`/datasets/${letters.id}/samples.png`).expect(200);
    expect(res.headers['content-type']).toBe('image/png');
    const { width, height } = await sharp(res.body as Buffer).metadata();
    expect(height).toBe(3 * 28);
    expect(width).toBe(10 * 28);
    const builtIn = await request(server()).get('/datasets/mnist/samples.png').expect(200);
    expect((await sharp(builtIn.body as Buffer).metadata()).height).toBe(10 * 28);
  });

  it('when a CSV is uploaded with ?classes=, then its labels get those names', async () => {
    const rows = [
      ...Array.from({ length: 8 }, () => csvRow(0, 200)),
      ...Array.from({ length: 8 }, () => csvRow(1, 90)),
    ];
    const res = await upload(csv(rows), 'name=Two%20kinds&classes=dot,dash', 'text/csv').expect(201);
    expect(res.body).toMatchObject({
      format: 'csv',
      classes: ['dot', 'dash'],
      counts: { train: 14, test: 2 },
    });
    await request(server()).delete(`/datasets/${res.body.id}`).set(auth).expect(204);
  });

  it.each([
    ['no name', '', 'application/zip', 400],
    ['a name with markup', 'name=%3Cb%3E', 'application/zip', 400],
    ['classes= on a zip', 'name=x&classes=a,b', 'application/zip', 400],
    ['JSON', 'name=x', 'application/json', 415],
    ['plain text', 'name=x', 'text/plain', 415],
  ])(
    'when the upload has %s, then %#: a clear 4xx and nothing stored',
    async (_what, query, type, status) => {
      const body = type === 'application/json' ? '{"a":1}' : await foldersZip({ A: 0, B: 1 }, 2);
      const res = await upload(body, query, type).expect(status);
      expect(res.body.error.message.length).toBeGreaterThan(10);
      await expectNothingLeft([letters.id]);
    },
  );

  it('when a zip is hostile or broken, then 400 naming what is wrong, and nothing is stored', async () => {
    const png = (await mnistPngs(3, 1))[0]!;
    const cases: [Buffer, RegExp][] = [
      [
        zipArchive([
          { name: '../evil/1.png', data: png },
          { name: 'A/1.png', data: png },
        ]),
        /\.\.\/evil|relative path/,
      ],
      [
        zipArchive([
          { name: 'A/link.png', data: '/etc/passwd', mode: 0o120777 },
          { name: 'B/1.png', data: png },
        ]),
        /symbolic link/i,
      ],
      [Buffer.from('PK\u0003\u0004 this is not a zip'), /zip/i],
      [zipArchive([{ name: 'A/1.png', data: png }]), /class/i],
    ];
    for (const [body, message] of cases) {
      const res = await upload(body, 'name=bad').expect(400);
      expect(res.body.error.message).toMatch(message);
    }
    await expectNothingLeft([letters.id]);
  });

  it('when the body is declared over DATASET_MAX_BYTES, then 413 before it is read, and the connection is closed', async () => {
    // Bodies that pass the limit as they stream: test/datasets/hostile-upload.test.ts.
    const res = await upload(Buffer.alloc(300 * 1024, 1), 'name=big').expect(413);
    expect(res.body.error.code).toBe('dataset_too_large');
    expect(res.body.error.message).toContain('DATASET_MAX_BYTES');
    expect(res.headers.connection).toBe('close');
    await expectNothingLeft([letters.id]);
  });

  it('when an upload or a delete comes without the API key, then 401 and nothing changes', async () => {
    await request(server())
      .post('/datasets?name=x')
      .set('content-type', 'application/zip')
      .send(await foldersZip({ A: 0, B: 1 }, 2))
      .expect(401);
    await request(server()).delete(`/datasets/${letters.id}`).expect(401);
    await expectNothingLeft([letters.id]);
  });

  it('when a job names an uploaded dataset, then it is queued with the validation split its size gives', async () => {
    const res = await request(server())
      .post('/jobs')
      .set(auth)
      .send({ dataset: letters.id, epochs: 1 })
      .expect(202);
    // 36 training images: a sixth held out for validation, as MNIST's 10,000 of 60,000.
    expect(res.body.params).toMatchObject({ dataset: letters.id, validationSize: 6 });
    await request(server()).delete(`/jobs/${res.body.id}`).set(auth).expect(202);
  });

  it('when a job names a dataset that does not exist, or asks for more validation than it holds, then 400', async () => {
    const unknown = await request(server())
      .post('/jobs')
      .set(auth)
      .send({ dataset: 'nope-12345678' })
      .expect(400);
    expect(unknown.body.error.details[0].field).toBe('body.dataset');
    expect(unknown.body.error.message).toContain("no dataset 'nope-12345678'");
    const tooMuch = await request(server())
      .post('/jobs')
      .set(auth)
      .send({ dataset: letters.id, validationSize: 36 })
      .expect(400);
    expect(tooMuch.body.error.details[0].field).toBe('body.validationSize');
  });

  it('when a queued job trains on a dataset, then DELETE is a 409 naming it; once cancelled, 204', async () => {
    const job = await request(server()).post('/jobs').set(auth).send({ dataset: letters.id }).expect(202);
    const refused = await request(server()).delete(`/datasets/${letters.id}`).set(auth).expect(409);
    expect(refused.body.error).toMatchObject({ code: 'in_use' });
    expect(refused.body.error.message).toContain(job.body.id);
    await request(server()).get(`/datasets/${letters.id}`).expect(200);
    await request(server()).delete(`/jobs/${job.body.id}`).set(auth).expect(202);
    await request(server()).delete(`/datasets/${letters.id}`).set(auth).expect(204);
    await request(server()).get(`/datasets/${letters.id}`).expect(404);
    await request(server()).delete(`/datasets/${letters.id}`).set(auth).expect(404);
    await request(server()).post('/jobs').set(auth).send({ dataset: letters.id }).expect(400);
  });

  it('when a job is created while its dataset is being deleted, then the job is refused and the delete goes on', async () => {
    const { id } = (await upload(await foldersZip({ A: 0, B: 1 }, 4), 'name=doomed').expect(201)).body;
    let during: request.Response | undefined;
    // The delete has hidden the dataset and is about to look for jobs on it: a job asked for now.
    const removed = await api.datasets.remove(id, {
      beforeDelete: async () => {
        during = await request(server()).post('/jobs').set(auth).send({ dataset: id });
      },
    });
    expect(removed).toBe(true);
    expect(during?.status).toBe(400);
    expect((await api.jobs.unfinishedJobsWhere((p) => p.dataset === id)).length).toBe(0);
  });

  it('when a built-in dataset is deleted, or ids are junk, then 403 or 404', async () => {
    await request(server()).delete('/datasets/mnist').set(auth).expect(403);
    for (const id of ['..', '%2e%2e', 'A'.repeat(200), 'nope-12345678', '.staging'])
      await request(server()).get(`/datasets/${id}`).expect(404);
    await request(server()).get('/datasets/nope-12345678/samples.png').expect(404);
  });
});

describe('POST /jobs with baseVersion: fine-tuning', () => {
  const api = useTestApi('fine-tune-jobs');

  async function publish(architecture: 'seed' | 'wide'): Promise<number> {
    await initBackend('wasm');
    const model = buildModel(architecture, 1);
    try {
      const report = trainingReportFixture({
        architecture,
        params: { ...trainingReportFixture().params, architecture },
      });
      return (await api.store.publish(model, report, { jobId: null })).version;
    } finally {
      model.dispose();
    }
  }

  it('when the base exists, then the job takes its network unless told; another network or a missing base is a 400', async () => {
    const wide = await publish('wide');
    const job = await request(api.app.server)
      .post('/jobs')
      .send({ baseVersion: wide, trainSize: 100 })
      .expect(202);
    expect(job.body.params).toMatchObject({ baseVersion: wide, architecture: 'wide' });
    const mismatch = await request(api.app.server)
      .post('/jobs')
      .send({ baseVersion: wide, architecture: 'seed' })
      .expect(400);
    expect(mismatch.body.error.message).toContain("version 1 is a 'wide' network");
    const missing = await request(api.app.server).post('/jobs').send({ baseVersion: 99 }).expect(400);
    expect(missing.body.error.details[0].field).toBe('body.baseVersion');
    for (const baseVersion of [0, -1, 1.5, '1', null, 2 ** 60])
      await request(api.app.server).post('/jobs').send({ baseVersion }).expect(400);
  });

  it('when a queued job fine-tunes from a version, then deleting that version is a 409 until the job is cancelled', async () => {
    const base = await publish('seed');
    const job = await request(api.app.server).post('/jobs').send({ baseVersion: base }).expect(202);
    const refused = await request(api.app.server).delete(`/models/${base}`).expect(409);
    expect(refused.body.error.code).toBe('in_use');
    expect(refused.body.error.message).toContain(job.body.id);
    await request(api.app.server).delete(`/jobs/${job.body.id}`).expect(202);
    await request(api.app.server).delete(`/models/${base}`).expect(204);
  });
});

describe('POST /datasets while an upload is processed for longer than the idle timeout', () => {
  /** Holds each upload's processing (after its body is in) until `release` is called. */
  class HeldCatalog extends DatasetCatalog {
    release!: () => void;
    private readonly held = new Promise<void>((resolve) => (this.release = resolve));
    override ingest(...[body, upload, limits, signal, inLine]: Parameters<DatasetCatalog['ingest']>) {
      return super.ingest(body, upload, limits, signal, (work) =>
        (inLine ?? ((w) => w()))(async () => {
          await this.held;
          return work();
        }),
      );
    }
  }

  const api = useTestApi('datasets-idle', ({ dir }) => ({
    datasets: new HeldCatalog(new FileDatasetStore(join(dir, 'datasets'))),
    connectionLimits: {
      requestTimeoutMs: 10_000,
      headersTimeoutMs: 5_000,
      idleTimeoutMs: 100,
      maxConnections: 100,
    },
  }));

  it('when processing takes ten times the idle timeout, then the connection stays and the answer is 201', async () => {
    const catalog = api.datasets as HeldCatalog;
    const answer = request(api.app.server)
      .post('/datasets?name=slow')
      .set('content-type', 'application/zip')
      .send(await foldersZip({ A: 0, B: 1 }, 4))
      .then((res) => res);
    // Ten idle timeouts with no traffic either way, then the processing may go on.
    await sleep(1000);
    catalog.release();
    const res = await answer;
    expect(res.status).toBe(201);
    expect(res.body.classes).toEqual(['A', 'B']);
  });
});
