import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createDigitClient,
  expectData,
  rawBody,
  type DigitClient,
} from '../../clients/typescript/src/index.js';
import { IMAGE_PIXELS, IMAGE_SIDE } from '../../src/ml/image-shape.js';
import type { TrainParams } from '../../src/ml/train-params.js';
import { mnistPngs } from '../datasets/dataset-fixtures.js';
import { useTestApi } from '../helpers/api.js';
import { publishUntrained } from '../helpers/models.js';
import { trainingReportFixture } from '../helpers/training-report.js';
import { zipArchive } from '../helpers/zip-archive.js';
import {
  ARTIFACTS,
  buildWebPage,
  imageSize,
  layoutOn,
  optionValues,
  PATIENCE_MS,
  text,
  textBecomes,
  useChromium,
} from '../helpers/web-page.js';

/**
 * The training form on the data sets of GET /datasets and the versions to fine-tune from (issue
 * 15), in Chromium: an upload chosen, previewed and posted with a base version; a fine-tuned
 * version listed with both. Needs the dataset routes (GET/POST /datasets, samples.png) and
 * `baseVersion` in POST /jobs.
 */
const CLASSES = ['circle', 'square', "Ёлка & 'tri'"];
const PER_CLASS = 21;

/** The Kaggle digit-recognizer layout: a header, then a label and 784 pixels per row; a shape per class, shifted a little. */
function shapesCsv(): string {
  const lines = [['label', ...Array.from({ length: IMAGE_PIXELS }, (_, i) => `pixel${i}`)].join(',')];
  for (let n = 0; n < PER_CLASS; n++) {
    for (let label = 0; label < CLASSES.length; label++) {
      const shift = (n % 5) - 2;
      const pixels = new Array<number>(IMAGE_PIXELS).fill(0);
      for (let y = 6; y < 22; y++) {
        for (let x = 6; x < 22; x++) {
          const dx = x - 14;
          const dy = y - 14;
          const on =
            label === 0
              ? Math.abs(Math.hypot(dx, dy) - 6) < 1.5
              : label === 1
                ? Math.max(Math.abs(dx), Math.abs(dy)) === 7
                : y >= 8 && Math.abs(dx) <= (y - 8) / 2 && (y === 21 || Math.abs(dx) >= (y - 8) / 2 - 1.5);
          if (on) pixels[y * IMAGE_SIDE + x + shift] = 255;
        }
      }
      lines.push([label, ...pixels].join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}

describe('the training form on uploaded data sets and fine-tuning', () => {
  const api = useTestApi('web-datasets', async ({ dir }) => ({
    web: { root: await buildWebPage(join(dir, 'web')) },
  }));
  const { problems, open } = useChromium(join(api.dir, 'profile'));
  let base: string;
  let client: DigitClient;
  let uploaded: { id: string; name: string; counts: { train: number } };

  beforeAll(async () => {
    // Version 1, on MNIST: what the form offers to fine-tune from.
    await publishUntrained(api.store, trainingReportFixture());
    base = await api.app.listen({ host: '127.0.0.1', port: 0 });
    client = createDigitClient({ baseUrl: base });
    const { data, error, response } = await client.POST('/datasets', {
      params: { query: { name: 'Shapes', classes: CLASSES.join(',') } },
      ...rawBody(shapesCsv(), 'text/csv'),
    });
    expect(response.status, JSON.stringify(error)).toBe(201);
    uploaded = data!;
  });

  it('when an uploaded set is chosen, then its samples and class names show, and the job posts it with the version to fine-tune from', async () => {
    const page = await open(`${base}/#/train`);
    const dataset = page.getByLabel('Dataset', { exact: true });
    await page.getByLabel('Epochs', { exact: true }).waitFor({ timeout: PATIENCE_MS });
    expect(await optionValues(dataset)).toEqual(['mnist', 'fashion-mnist', uploaded.id]);
    expect(await dataset.locator('option').nth(2).textContent()).toBe(
      `Shapes: 3 classes, ${uploaded.counts.train.toLocaleString('en-US')} training images`,
    );

    // MNIST is chosen at first: its digits and examples.
    expect(await page.locator('#dataset-classes li').allTextContents()).toEqual(
      Array.from({ length: 10 }, (_, d) => String(d)),
    );
    await expect.poll(() => imageSize(page, '#dataset-samples'), { timeout: PATIENCE_MS }).not.toBeNull();

    await dataset.selectOption(uploaded.id);
    expect(await page.locator('#dataset-classes li').allInnerTexts()).toEqual(CLASSES);
    expect(await text(page, '#dataset-facts')).toMatch(/^3 classes; [\d,]+ training and [\d,]+ test images$/);
    await expect
      .poll(() => imageSize(page, '#dataset-samples'), { timeout: PATIENCE_MS })
      .toEqual([expect.any(Number), expect.any(Number)]);
    expect(await page.locator('#dataset-samples').getAttribute('src')).toBe(
      `/datasets/${uploaded.id}/samples.png`,
    );

    const baseVersion = page.getByLabel('Fine-tune from version');
    expect(await optionValues(baseVersion)).toEqual(['', '1']);
    await baseVersion.selectOption('1');
    await page.getByLabel('Epochs', { exact: true }).fill('1');
    await page.getByLabel('Validation size').fill('5');
    const posted = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/jobs'));
    await page.getByRole('button', { name: 'Start training' }).click();
    expect((await posted).postDataJSON()).toMatchObject({
      dataset: uploaded.id,
      baseVersion: 1,
      epochs: 1,
      validationSize: 5,
    });
    // No worker here: the job waits in the queue with what was asked.
    await textBecomes(page, '#job-state', /^queued$/);
    const jobId = /#\/train\/([\w-]+)$/.exec(page.url())![1]!;
    const job = await expectData(client.GET('/jobs/{id}', { params: { path: { id: jobId } } }));
    expect(job.params).toMatchObject({ dataset: uploaded.id, baseVersion: 1 });
    await textBecomes(page, '#jobs-table tbody tr:first-child', /Shapes/);
    await page.screenshot({ path: `${ARTIFACTS}/train-datasets.png`, fullPage: true });

    await page.setViewportSize({ width: 390, height: 844 });
    await expect.poll(() => layoutOn(page, 390), { timeout: PATIENCE_MS }).toMatchObject({ settled: true });
    await page.screenshot({ path: `${ARTIFACTS}/train-datasets-phone.png`, fullPage: true });
    await page.close();
    expect(problems).toEqual([]);
  });

  it('when a version was fine-tuned on the upload, then the list and its page name the set and the base version', async () => {
    const params = { ...trainingReportFixture().params, dataset: uploaded.id, baseVersion: 1 } as TrainParams;
    const tuned = await publishUntrained(
      api.store,
      trainingReportFixture({
        params,
        classes: CLASSES,
        confusion: [
          [9, 1, 0],
          [0, 10, 0],
          [2, 0, 8],
        ],
        misclassified: [{ index: 3, label: 2, predicted: 0, confidence: 0.8 }],
      }),
    );
    const page = await open(`${base}/#/models`);
    const row = page.locator('#models-table tbody tr').first();
    await textBecomes(page, '#models-table tbody tr', /Shapes/);
    expect(await row.locator('.trained-on').innerText()).toBe(
      'Shapes, 50,000 images\nfine-tuned from version 1',
    );

    await page.getByRole('link', { name: `Version ${tuned}`, exact: true }).click();
    await page.locator('#confusion-matrix').waitFor({ timeout: PATIENCE_MS });
    const facts = await page.locator('dl.stats').innerText();
    expect(facts).toContain('Shapes, 3 classes');
    expect(facts).toMatch(/Fine-tuned from\s+version 1/);
    expect(await page.locator('#misclassified figcaption').first().innerText()).toBe(
      "true Ёлка & 'tri', predicted circle\n80 %",
    );
    await page.close();
    expect(problems).toEqual([]);
  });

  it('when a zip is uploaded from the train page, then it is chosen with its classes; a broken one shows why', async () => {
    const page = await open(`${base}/#/train`);
    await page.getByLabel('Epochs', { exact: true }).waitFor({ timeout: PATIENCE_MS });
    await page.locator('#dataset-upload summary').click();
    const name = page.getByLabel('Name of the dataset');
    const file = page.getByLabel('Zip or CSV file');
    const upload = page.getByRole('button', { name: 'Upload', exact: true });

    await name.fill('Broken');
    await file.setInputFiles({
      name: 'broken.zip',
      mimeType: 'application/zip',
      buffer: Buffer.from('not a zip'),
    });
    await upload.click();
    await textBecomes(page, '#upload-status', /^Could not upload: .*zip/i);

    const entries = [];
    for (const [folder, digit] of [
      ['cat', 0],
      ['dog', 1],
    ] as const)
      entries.push(...(await mnistPngs(digit, 14)).map((data, i) => ({ name: `${folder}/${i}.png`, data })));
    await name.fill('Pets');
    // Windows browsers call a zip application/x-zip-compressed, some none at all: the page names it.
    await file.setInputFiles({ name: 'pets.zip', mimeType: '', buffer: zipArchive(entries) });
    await upload.click();
    await textBecomes(page, '#upload-status', /^Stored Pets: 2 classes, 24 training images\.$/);
    const dataset = page.getByLabel('Dataset', { exact: true });
    expect(await dataset.inputValue()).toMatch(/^pets-[a-z0-9]{8}$/);
    expect(await page.locator('#dataset-classes li').allInnerTexts()).toEqual(['cat', 'dog']);
    await page.screenshot({ path: `${ARTIFACTS}/train-upload.png` });
    const listed = await expectData(client.GET('/datasets'));
    expect(listed.datasets.map((d) => d.name)).toEqual(['MNIST', 'Fashion-MNIST', 'Shapes', 'Pets']);
    await page.close();
    expect(problems).toEqual([]);
  });
});
