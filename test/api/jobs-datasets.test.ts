import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { feedbackSplit } from '../../src/feedback/feedback-schema.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { buildModel } from '../../src/ml/architectures.js';
import { DIGIT_CLASSES, FASHION_MNIST_CLASSES } from '../../src/ml/data/dataset.js';
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC } from '../../src/ml/data/idx.js';
import { foldersZip } from '../datasets/dataset-fixtures.js';
import { useTestApi } from '../helpers/api.js';
import { feedbackExample, imagesInSplit } from '../helpers/feedback-examples.js';
import { feedbackParts, type FeedbackParts } from '../helpers/feedback.js';
import { idxHeader } from '../helpers/idx-files.js';
import { trainingReportFixture } from '../helpers/training-report.js';

const DIGIT_FOLDERS = Object.fromEntries(Array.from({ length: 10 }, (_, d) => [String(d), d]));

/**
 * POST /jobs with `datasets`, `feedbackWeight` and a base version by alias (issue 17). No worker:
 * these are the rules a job is checked against when it is created.
 */
describe('POST /jobs on several datasets', () => {
  let feedback!: FeedbackParts;
  const api = useTestApi('jobs-datasets', (scope) => {
    feedback = feedbackParts(scope);
    return { datasetDirs: [scope.dir], maxJobImages: 100_000, feedback };
  });
  const server = () => api.app.server;
  const post = (body: unknown) =>
    request(server())
      .post('/jobs')
      .send(body as object);
  const cancel = (id: string) => request(server()).delete(`/jobs/${id}`).expect(202);

  /** A dataset directory of header-only IDX files: `count` training images, classes.txt if given. */
  async function pathDataset(name: string, count: number, classes?: string[]): Promise<string> {
    const dir = join(api.dir, name);
    await mkdir(dir);
    await writeFile(join(dir, 'train-images-idx3-ubyte'), idxHeader(IDX_IMAGES_MAGIC, [count, 28, 28]));
    await writeFile(join(dir, 'train-labels-idx1-ubyte'), idxHeader(IDX_LABELS_MAGIC, [count]));
    await writeFile(join(dir, 't10k-images-idx3-ubyte'), idxHeader(IDX_IMAGES_MAGIC, [10, 28, 28]));
    await writeFile(join(dir, 't10k-labels-idx1-ubyte'), idxHeader(IDX_LABELS_MAGIC, [10]));
    if (classes) await writeFile(join(dir, 'classes.txt'), `${classes.join('\n')}\n`);
    return dir;
  }

  it('when a job gives datasets alone, then its dataset is their first; given both alike, the same', async () => {
    const alone = await post({ datasets: ['mnist', 'feedback'], feedbackWeight: 20, epochs: 1 }).expect(202);
    expect(alone.body.params).toMatchObject({
      dataset: 'mnist',
      datasets: ['mnist', 'feedback'],
      feedbackWeight: 20,
      validationSize: 10_000,
    });
    const both = await post({ dataset: 'fashion-mnist', datasets: ['fashion-mnist'], epochs: 1 }).expect(202);
    expect(both.body.params).toMatchObject({ dataset: 'fashion-mnist', datasets: ['fashion-mnist'] });
    const plain = await post({ epochs: 1 }).expect(202);
    expect(plain.body.params.dataset).toBe('mnist');
    expect(plain.body.params).not.toHaveProperty('datasets');
    for (const job of [alone, both, plain]) await cancel(job.body.id);
  });

  it('when dataset and the first of datasets differ, then 400 naming both fields', async () => {
    const res = await post({ dataset: 'fashion-mnist', datasets: ['mnist', 'feedback'] }).expect(400);
    expect(res.body.error.details).toEqual([
      {
        field: 'body.dataset',
        message:
          "dataset 'fashion-mnist' is not the first of datasets ('mnist'), which gives the classes, " +
          'validation and test: give datasets alone, or both with the same first',
      },
      { field: 'body.datasets', message: "the first of datasets ('mnist') is not dataset ('fashion-mnist')" },
    ]);
  });

  it("when 'feedback' is first, then 400 saying to put a dataset such as mnist first", async () => {
    const res = await post({ datasets: ['feedback', 'mnist'] }).expect(400);
    expect(res.body.error.details[0].field).toBe('body.datasets.0');
    expect(res.body.error.message).toContain(
      "'feedback' cannot be first: the first dataset gives the classes, the validation and the test split; " +
        "put one such as 'mnist' first",
    );
    await post({ datasets: ['feedback'] }).expect(400);
  });

  it.each([
    [{ datasets: ['mnist', 'mnist'] }, 'body.datasets.1', "'mnist' is named twice in datasets"],
    [{ datasets: ['mnist', 'feedback', 'feedback'] }, 'body.datasets.2', 'named twice'],
    [{ datasets: ['mnist', 'mnsit'] }, 'body.datasets.1', "or 'feedback'"],
    [{ datasets: ['mnist', 'relative/dir'] }, 'body.datasets.1', 'each of datasets must be'],
    [{ datasets: [] }, 'body.datasets', ''],
    [{ datasets: ['mnist', 'feedback', '/a', '/b', '/c'] }, 'body.datasets', ''],
    [{ datasets: 'mnist' }, 'body.datasets', 'expected array'],
    [{ datasets: [7] }, 'body.datasets.0', 'expected string'],
    [{ datasets: [null] }, 'body.datasets.0', 'expected string'],
    [{ datasets: {} }, 'body.datasets', 'expected array'],
    [{ datasets: ['mnist', 'x'.repeat(70)] }, 'body.datasets.1', 'each of datasets must be'],
    [{ feedbackWeight: 20 }, 'body.feedbackWeight', "feedbackWeight is for jobs that train on 'feedback'"],
    [{ datasets: ['mnist'], feedbackWeight: 2 }, 'body.feedbackWeight', 'add it to datasets'],
    [{ datasets: ['mnist', 'feedback'], feedbackWeight: 0 }, 'body.feedbackWeight', ''],
    [{ datasets: ['mnist', 'feedback'], feedbackWeight: 0.5 }, 'body.feedbackWeight', ''],
    [{ datasets: ['mnist', 'feedback'], feedbackWeight: 101 }, 'body.feedbackWeight', ''],
    [{ datasets: ['mnist', 'feedback'], feedbackWeight: '20' }, 'body.feedbackWeight', 'expected number'],
    [{ datasets: ['mnist', 'feedback'], feedbackWeight: null }, 'body.feedbackWeight', 'expected number'],
  ])('when the body is %j, then 400 naming %s', async (body, field, message) => {
    const res = await post(body).expect(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
    expect(res.body.error.message).toContain(message);
  });

  it("when another dataset's classes are not the first's, then 400 naming it and the difference; feedback's need not be", async () => {
    const fashion = await post({ datasets: ['mnist', 'fashion-mnist'] }).expect(400);
    expect(fashion.body.error.details[0].field).toBe('body.datasets.1');
    const digits = Array.from({ length: 10 }, (_, d) => `'${d}'`).join(', ');
    const clothes = FASHION_MNIST_CLASSES.map((c) => `'${c}'`).join(', ');
    expect(fashion.body.error.message).toBe(
      "datasets[1]: 'fashion-mnist' does not have the classes of 'mnist' (the first of datasets, which the " +
        `model outputs): it has no ${digits} and ${clothes} besides; datasets trained on together need the ` +
        'same classes in the same order',
    );
    const letters = await pathDataset('letters', 100, ['a', 'b', 'c']);
    const byPath = await post({ datasets: ['mnist', letters] }).expect(400);
    expect(byPath.body.error.message).toContain(
      `datasets[1]: '${letters}' does not have the classes of 'mnist'`,
    );
    const reversed = await pathDataset('reversed', 100, ['9', '8', '7', '6', '5', '4', '3', '2', '1', '0']);
    const order = await post({ datasets: ['mnist', reversed] }).expect(400);
    expect(order.body.error.message).toContain('it has the same classes in another order');
    // Feedback of a dataset's classes is only what a job can use: the rest is left out in training.
    const ok = await post({ datasets: ['fashion-mnist', 'feedback'], epochs: 1 }).expect(202);
    await cancel(ok.body.id);
  });

  it('when a dataset of several is given by path, then it must be under DATASET_DIRS and readable', async () => {
    const outside = await post({ datasets: ['mnist', '/etc'] }).expect(400);
    expect(outside.body.error.details[0].field).toBe('body.datasets.1');
    expect(outside.body.error.message).toBe(
      'datasets[1]: /etc is not under a directory this service reads from (DATASET_DIRS)',
    );
    const missing = await post({ datasets: ['mnist', join(api.dir, 'none')] }).expect(400);
    expect(missing.body.error.details[0].field).toBe('body.datasets.1');
    expect(missing.body.error.message).toMatch(/^datasets\[1\]: cannot read its classes: /);
    const unknown = await post({ datasets: ['mnist', 'nope-12345678'] }).expect(400);
    expect(unknown.body.error.message).toBe(
      "datasets[1]: no dataset 'nope-12345678' (GET /datasets lists them)",
    );
  });

  it("when training images from every dataset and feedback's examples x weight exceed JOB_MAX_IMAGES, then 400 saying how many each gives", async () => {
    // 90 examples to train on, 10 only to measure on, 5 of a class no digit model has.
    const examples = [
      ...imagesInSplit('train', 90).map((pixels, i) => feedbackExample(pixels, String(i % 10), i)),
      ...imagesInSplit('test', 10).map((pixels, i) => feedbackExample(pixels, String(i), 100 + i)),
      ...imagesInSplit('train', 5, 1_000).map((pixels, i) => feedbackExample(pixels, 'cat', 200 + i)),
    ];
    for (const example of examples) await feedback.store.add(example);
    expect(examples.filter((e) => feedbackSplit(e.id) === 'train' && e.class !== 'cat')).toHaveLength(90);
    const job = (epochs: number) => ({
      datasets: ['mnist', 'feedback'],
      feedbackWeight: 100,
      trainSize: 1_000,
      epochs,
    });
    // 10 x (1,000 + 90 x 100) is 100,000: within the bound, though all 105 stored would not be.
    const fits = await post(job(10)).expect(202);
    await cancel(fits.body.id);
    const over = await post(job(11)).expect(400);
    expect(over.body.error.details[0].field).toBe('body.epochs');
    expect(over.body.error.message).toBe(
      "epochs x training images is 110,000 (each epoch 1,000 of 'mnist', 9,000 of 'feedback'); this " +
        'service trains at most 100,000 per job (JOB_MAX_IMAGES): lower epochs or trainSize, or train on ' +
        'fewer datasets or a lower feedbackWeight',
    );
    // Another dataset counts its whole training file: validation comes from the first only.
    const big = await pathDataset('big', 99_500);
    await post({ datasets: ['mnist', big], trainSize: 500, validationSize: 0, epochs: 1 }).expect(202);
    const tooBig = await post({ datasets: ['mnist', big], trainSize: 501, epochs: 1 }).expect(400);
    expect(tooBig.body.error.message).toContain(`(each epoch 501 of 'mnist', 99,500 of '${big}')`);
  });

  const upload = async (name: string, folders: Record<string, number>) =>
    (
      await request(server())
        .post(`/datasets?name=${name}`)
        .set('content-type', 'application/zip')
        .send(await foldersZip(folders, 4))
        .expect(201)
    ).body as { id: string; classes: string[] };

  it('when an uploaded dataset has other classes than the first, then 400 naming it, whichever is first', async () => {
    const letters = await upload('Letters', { A: 0, B: 1, C: 2 });
    const after = await post({ datasets: ['mnist', letters.id] }).expect(400);
    expect(after.body.error.message).toContain(
      `datasets[1]: '${letters.id}' does not have the classes of 'mnist'`,
    );
    expect(after.body.error.message).toContain("'9' and 'A', 'B', 'C' besides");
    const before = await post({ datasets: [letters.id, 'mnist'] }).expect(400);
    expect(before.body.error.message).toContain(
      `datasets[1]: 'mnist' does not have the classes of '${letters.id}'`,
    );
    expect(before.body.error.message).toContain("it has no 'A', 'B', 'C' and '0',");
  });

  it('when an unfinished job names an uploaded dataset in datasets, then deleting it is a 409 naming the job until it is cancelled', async () => {
    const digits = await upload('Digits', DIGIT_FOLDERS);
    expect(digits.classes).toEqual(DIGIT_CLASSES);
    const job = await post({ datasets: ['mnist', digits.id, 'feedback'], epochs: 1 }).expect(202);
    expect(job.body.params).toMatchObject({ dataset: 'mnist', datasets: ['mnist', digits.id, 'feedback'] });
    const refused = await request(server()).delete(`/datasets/${digits.id}`).expect(409);
    expect(refused.body.error.code).toBe('in_use');
    expect(refused.body.error.message).toContain(job.body.id);
    await cancel(job.body.id);
    // A job asked for while the delete has hidden it, about to look for jobs on it: refused.
    let during: request.Response | undefined;
    const removed = await api.datasets.remove(digits.id, {
      beforeDelete: async () => {
        during = await post({ datasets: ['mnist', digits.id] });
      },
    });
    expect(removed).toBe(true);
    expect(during?.status).toBe(400);
    expect(during?.body.error.details[0].field).toBe('body.datasets.1');
    expect(await api.jobs.unfinishedJobsWhere((p) => p.datasets?.includes(digits.id) ?? false)).toEqual([]);
  });

  it("when baseVersion names an alias, then the job is queued with the version it names now and that version's network; an unknown alias is a 400", async () => {
    await initBackend('wasm');
    const model = buildModel('wide', 1);
    const report = trainingReportFixture({
      architecture: 'wide',
      params: { ...trainingReportFixture().params, architecture: 'wide' },
    });
    const { version } = await api.store.publish(model, report, { jobId: null });
    model.dispose();
    await api.aliases.set('production', version);
    const job = await post({ baseVersion: 'production', trainSize: 100, epochs: 1 }).expect(202);
    expect(job.body.params).toMatchObject({ baseVersion: version, architecture: 'wide' });
    // What the queue holds is the number: moving the alias later does not move the job.
    expect((await api.jobs.get(job.body.id))?.params.baseVersion).toBe(version);
    await cancel(job.body.id);
    const unknown = await post({ baseVersion: 'staging', trainSize: 100, epochs: 1 }).expect(400);
    expect(unknown.body.error.details[0].field).toBe('body.baseVersion');
    expect(unknown.body.error.message).toBe(
      "baseVersion: no alias 'staging' (GET /models/aliases lists them)",
    );
    for (const baseVersion of ['Production', '1', '', 'x'.repeat(100), true, [1], { alias: 'production' }]) {
      const res = await post({ baseVersion, trainSize: 100, epochs: 1 }).expect(400);
      expect(res.body.error.details[0].field).toBe('body.baseVersion');
    }
    const mismatch = await post({
      baseVersion: 'production',
      architecture: 'seed',
      trainSize: 100,
      epochs: 1,
    });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.error.details[0].field).toBe('body.architecture');
    expect(mismatch.body.error.message).toContain(`version ${version} is a 'wide' network`);
  });
});

describe('POST /jobs naming feedback where the API keeps none', () => {
  const api = useTestApi('jobs-no-feedback');

  it("when a job names 'feedback' and the API has no feedback (FEEDBACK=off), then 400 saying so", async () => {
    const res = await request(api.app.server)
      .post('/jobs')
      .send({ datasets: ['mnist', 'feedback'] })
      .expect(400);
    expect(res.body.error.details[0].field).toBe('body.datasets.1');
    expect(res.body.error.message).toBe('datasets[1]: this service keeps no feedback to train on');
  });
});
