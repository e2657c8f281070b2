import { join } from 'node:path';
import type { Page, Request } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDigitClient, expectData, type DigitClient } from '../../clients/typescript/src/index.js';
import { formatPercent } from '../../web/src/logic/format.js';
import sharp from 'sharp';
import { DIGIT_CLASSES } from '../../src/ml/data/dataset.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import type { RedisFeedbackEvaluations } from '../../src/feedback/redis-feedback-evaluations.js';
import { useTestApi, type TestApi, type TestApiOptions, type TestApiScope } from '../helpers/api.js';
import { testFeedback } from '../helpers/feedback.js';
import { publishUntrained } from '../helpers/models.js';
import { trainingReportFixture } from '../helpers/training-report.js';
import {
  ARTIFACTS,
  buildWebPage,
  drawOne,
  imageSize,
  layoutOn,
  mnistDigitPng,
  PATIENCE_MS,
  text,
  textBecomes,
  useChromium,
} from '../helpers/web-page.js';

/**
 * The feedback loop on the web page (issue 17) in a real headless Chromium against real APIs:
 * "Right?" after each prediction on the try page, the feedback view's counts, gallery and
 * fine-tune button. The models are untrained seed networks: any answer is some digit, and the
 * tests correct it to another one.
 */
const API_KEY = 'web-feedback-test-key-0123456789';

const isPost = (path: string) => (r: Request) => r.method() === 'POST' && new URL(r.url()).pathname === path;

/** The try page's "Right?" box, once it asks about a prediction (its buttons enabled). */
async function rightBox(page: Page) {
  await page.locator('#feedback-yes:not([disabled])').waitFor({ timeout: PATIENCE_MS });
  const box = page.getByRole('region', { name: 'Right?' });
  const classButton = (name: string) =>
    box.getByRole('group', { name: 'No, it is:' }).getByRole('button', { name, exact: true });
  return { box, classButton, predicted: (await text(page, '#predicted-label'))! };
}

const allDisabled = async (page: Page) => {
  const buttons = page.locator('#feedback button');
  const states = await Promise.all(
    Array.from({ length: await buttons.count() }, (_, i) => buttons.nth(i).isDisabled()),
  );
  return states.length > 0 && states.every(Boolean);
};

/** Another digit than `label`, for a correction. */
const otherThan = (label: string, step = 5) => String((Number(label) + step) % 10);

type FeedbackApi = TestApi & { evaluations: RedisFeedbackEvaluations };

/** An API with feedback on, its evaluations at hand (`extra`: its other options). */
function useFeedbackApi(
  name: string,
  extra: (scope: TestApiScope) => TestApiOptions | Promise<TestApiOptions>,
) {
  // Filled in before the block's first test, as useTestApi fills in the rest.
  const api: ReturnType<typeof useTestApi> & Partial<Pick<FeedbackApi, 'evaluations'>> = useTestApi(
    name,
    async (scope) => {
      const store = new FileModelStore(join(scope.dir, 'models'));
      const feedback = testFeedback(scope, store);
      api.evaluations = feedback.evaluations;
      return { ...(await extra(scope)), store, feedback };
    },
  );
  return api as typeof api & FeedbackApi;
}

/** A digits version, served, and measured on the feedback (as the server's announcements make it). */
async function publishDigitsModel(api: FeedbackApi, seed = 1): Promise<number> {
  const version = await publishUntrained(api.store, trainingReportFixture(), seed);
  await api.predictor.refresh();
  api.evaluations.modelsChanged();
  return version;
}

/** The class the served version gives a stored example's 28x28 image, sent as its 784 bytes. */
async function servedAnswer(client: DigitClient, image: string): Promise<string> {
  const pixels = await sharp(Buffer.from(image.split(',')[1]!, 'base64'))
    .greyscale()
    .raw()
    .toBuffer();
  const answer = await expectData(client.POST('/predict', { body: { image: [...pixels], scale: 'byte' } }));
  return answer.predictions[0]!.class;
}

describe('feedback on the web page', () => {
  const api = useFeedbackApi('web-feedback', async ({ dir }) => ({
    web: { root: await buildWebPage(join(dir, 'web')) },
  }));
  const { dir } = api;
  // Corrections need the API key (FEEDBACK_REQUIRES_KEY).
  const keyed = useFeedbackApi('web-feedback-key', () => ({
    web: { root: join(dir, 'web') },
    auth: { apiKey: API_KEY, protectFeedback: true },
  }));
  // One correction a minute (FEEDBACK_RATE_LIMIT_PER_MINUTE=1), counted over an hour so the second
  // one is refused however long the browser takes between them.
  const limited = useFeedbackApi('web-feedback-limit', ({ redis, prefix }) => ({
    web: { root: join(dir, 'web') },
    rateLimit: {
      redis,
      prefix,
      perMinute: 0,
      predictPerMinute: 0,
      feedbackPerMinute: 1,
      windowMs: 3_600_000,
    },
  }));
  const { problems, open } = useChromium(join(dir, 'profile'));
  let base: string;
  let client: DigitClient;
  let version: number;
  /** The drawing's PNG as the try page sent it to /predict, and the class it was corrected to. */
  let drawing: { png: Buffer; right: string; predicted: string } | undefined;
  let yesLabel: string | undefined;

  beforeAll(async () => {
    version = await publishDigitsModel(api);
    base = await api.app.listen({ host: '127.0.0.1', port: 0 });
    client = createDigitClient({ baseUrl: base });
  });

  it('when a drawing is read and corrected with a class button, then the very image that went to /predict is sent with the version and the prediction, the page thanks, and the buttons are spent', async () => {
    const page = await open(`${base}/#/try`);
    await drawOne(page);
    const { box, classButton, predicted } = await rightBox(page);
    // One button per class of the version: the digits.
    await page.locator('#feedback-classes button').nth(9).waitFor({ timeout: PATIENCE_MS });
    expect(await page.locator('#feedback-classes button').allTextContents()).toEqual(DIGIT_CLASSES);
    expect(await box.getByRole('button', { name: 'Yes' }).isEnabled()).toBe(true);

    const right = otherThan(predicted);
    const posted = page.waitForRequest(isPost('/feedback'));
    await classButton(right).click();
    const body = (await posted).postDataJSON() as Record<string, unknown>;
    expect(body).toEqual({
      image: expect.stringMatching(/^data:image\/png;base64,/),
      label: Number(right),
      modelVersion: version,
      predicted: Number(predicted),
    });
    await textBecomes(page, '#feedback-outcome', new RegExp(`^Thanks: stored as \u201c${right}\u201d\\.$`));
    expect(await allDisabled(page)).toBe(true);
    // What is stored is what the model saw: the same 28x28 image, as the same PNG.
    const stored = await expectData(client.GET('/feedback/examples'));
    expect(stored.examples.map((e) => [e.class, e.image])).toEqual([
      [right, await page.locator('#model-input').getAttribute('src')],
    ]);
    // The drawing, for the next test to send again: the pad's own pixels, as /predict got them.
    const png = await page.evaluate<string>("document.querySelector('canvas.pad').toDataURL('image/png')");
    drawing = { png: Buffer.from(png.split(',')[1]!, 'base64'), right, predicted };
    await page.screenshot({ path: `${ARTIFACTS}/try-it-feedback.png`, fullPage: true });

    // Clear, draw again: a new prediction, asked about afresh.
    await page.getByRole('button', { name: 'Clear' }).click();
    expect(await page.locator('#feedback').isHidden()).toBe(true);
    await drawOne(page);
    await rightBox(page);
    expect(await text(page, '#feedback-outcome')).toBe('');
    await page.close();
    expect(problems).toEqual([]);
  });

  it('when the same drawing is corrected again, then the page says it is already stored; with another class, it shows the conflict the API names', async () => {
    expect(drawing, 'the first test stored a drawing').toBeDefined();
    const { png, right } = drawing!;
    const page = await open(`${base}/#/try`);
    const file = page.getByLabel('Or choose an image of one digit (PNG or JPEG):');
    await file.setInputFiles({ name: 'drawing.png', mimeType: 'image/png', buffer: png });
    const first = await rightBox(page);
    expect(first.predicted).toBe(drawing!.predicted);
    await first.classButton(right).click();
    await textBecomes(
      page,
      '#feedback-outcome',
      new RegExp(`^Already stored: this image was sent before, as \u201c${right}\u201d\\.$`),
    );
    expect(await allDisabled(page)).toBe(true);

    await page.getByRole('button', { name: 'Clear' }).click();
    await file.setInputFiles({ name: 'drawing.png', mimeType: 'image/png', buffer: png });
    const second = await rightBox(page);
    await second.classButton(otherThan(right, 1)).click();
    await textBecomes(
      page,
      '#feedback-outcome',
      new RegExp(`^Not stored: this image is stored already as class "${right}"`),
    );
    expect(await page.locator('#feedback-outcome').getAttribute('data-kind')).toBe('refused');
    expect(await allDisabled(page)).toBe(true);
    await page.close();
    expect(problems).toEqual([]);
  });

  it('when "Yes" is clicked, then the predicted class is sent as the label', async () => {
    const page = await open(`${base}/#/try`);
    await page
      .getByLabel('Or choose an image of one digit (PNG or JPEG):')
      .setInputFiles({ name: 'digit.png', mimeType: 'image/png', buffer: await mnistDigitPng(0) });
    const { box, predicted } = await rightBox(page);
    const posted = page.waitForRequest(isPost('/feedback'));
    await box.getByRole('button', { name: 'Yes' }).click();
    expect((await posted).postDataJSON()).toMatchObject({
      label: Number(predicted),
      predicted: Number(predicted),
      modelVersion: version,
    });
    await textBecomes(
      page,
      '#feedback-outcome',
      new RegExp(`^Thanks: stored as \u201c${predicted}\u201d\\.$`),
    );
    yesLabel = predicted;
    await page.close();
    expect(problems).toEqual([]);
  });

  it('when the feedback view is opened from the nav, then it counts the corrections per class and day, shows them newest first, and how each version does on them once measured', async () => {
    // The tests before stored two corrections: the drawing's, to another class, and a Yes.
    expect(drawing, 'the correction of the drawing').toMatchObject({ right: expect.stringMatching(/\S/) });
    expect(yesLabel, 'the Yes').toEqual(expect.stringMatching(/\S/));
    const page = await open(`${base}/#/try`);
    await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Feedback' }).click();
    await page.waitForURL(/#\/feedback$/);
    await textBecomes(page, '#feedback-total', /^2 examples \(at most 10,000 are kept\)$/);

    const expected = new Map<string, number>();
    for (const label of [drawing!.right, yesLabel!]) expected.set(label, (expected.get(label) ?? 0) + 1);
    const rows = await page.locator('#feedback-classes tbody tr').all();
    const counted = await Promise.all(
      rows.map(async (row) => [
        await row.locator('th').textContent(),
        Number(await row.locator('td').first().textContent()),
      ]),
    );
    expect(new Map(counted as [string, number][])).toEqual(expected);
    // UTC days, as the API counts them (a run may cross midnight: the dates are read, not assumed).
    const days = page.locator('#feedback-daily tbody tr');
    const dates = await days.locator('td:first-child').allTextContents();
    const perDay = await days.locator('td:last-child').allTextContents();
    expect(dates.every((d) => /^\d{4}-\d\d-\d\d$/.test(d))).toBe(true);
    expect(perDay.map(Number).reduce((x, y) => x + y, 0)).toBe(2);

    // Newest first: the "Yes" of the third test, then the drawing's correction.
    const figures = page.locator('#feedback-gallery figure');
    await figures.nth(1).waitFor({ timeout: PATIENCE_MS });
    expect(await figures.locator('figcaption').allInnerTexts()).toEqual([
      `${yesLabel}\nread as ${yesLabel} by v${version}`,
      `${drawing!.right}\nread as ${drawing!.predicted} by v${version}`,
    ]);
    await expect
      .poll(() => imageSize(page, '#feedback-gallery img'), { timeout: PATIENCE_MS })
      .toEqual([28, 28]);
    expect(await page.getByRole('button', { name: 'Show more' }).isHidden()).toBe(true);

    // Measured in the background; the view asks again until the figure is of the current feedback.
    const row = page.locator(`#feedback-accuracy tbody tr[data-version="${version}"]:not([data-measuring])`);
    await row.waitFor({ timeout: PATIENCE_MS });
    // What it should say: the served version asked about each stored image directly.
    const { examples } = await expectData(client.GET('/feedback/examples'));
    const answers = await Promise.all(examples.map((e) => servedAnswer(client, e.image)));
    const correct = examples.filter((e, i) => answers[i] === e.class).length;
    // The drawing was corrected away from what the version read: at least that one is wrong.
    expect(correct).toBeLessThan(2);
    expect(await row.locator('td').allTextContents()).toEqual([
      formatPercent(correct / 2),
      `${correct} / 2`,
      'no',
    ]);
    expect(await page.locator('#feedback-measuring').isHidden()).toBe(true);
    await page.screenshot({ path: `${ARTIFACTS}/feedback.png`, fullPage: true });

    await page.setViewportSize({ width: 390, height: 844 });
    await expect.poll(() => layoutOn(page, 390), { timeout: PATIENCE_MS }).toMatchObject({ settled: true });
    await page.screenshot({ path: `${ARTIFACTS}/feedback-phone.png`, fullPage: true });

    // The version's own page shows the same figure (GET /models/:v `feedback`).
    await row.getByRole('link', { name: `Version ${version}` }).click();
    await textBecomes(
      page,
      '#model-feedback',
      new RegExp(`^${formatPercent(correct / 2)}: ${correct} of 2 corrections$`),
    );
    await page.close();
    expect(problems).toEqual([]);
  });

  it('when the fine-tune button is clicked, then a job starts from production (not the newest version) on MNIST + feedback, and the page shows it', async () => {
    const page = await open(`${base}/#/feedback`);
    // No production yet: the latest version is the base, and the page says so.
    await textBecomes(
      page,
      '#fine-tune-base',
      new RegExp(`^Starts from version ${version} \\(the latest: no version is production yet`),
    );
    expect(await text(page, '#fine-tune-button')).toBe('Fine-tune the latest version on MNIST + feedback');
    await page.close();

    // A newer version appears, and the first is promoted: production is the base.
    const newer = await publishDigitsModel(api, 2);
    expect(await api.aliases.set('production', version)).toBe(true);
    const view = await open(`${base}/#/feedback`);
    await textBecomes(
      view,
      '#fine-tune-base',
      new RegExp(
        `^Starts from version ${version} \\(production\\), trains 2 epochs at learning rate 0\\.0003`,
      ),
    );
    const button = view.getByRole('button', { name: 'Fine-tune production on MNIST + feedback' });
    const posted = view.waitForRequest(isPost('/jobs'));
    await button.click();
    const body = (await posted).postDataJSON() as Record<string, unknown>;
    const expected = {
      baseVersion: version,
      dataset: 'mnist',
      datasets: ['mnist', 'feedback'],
      feedbackWeight: 20,
      epochs: 2,
      learningRate: 0.0003,
    };
    expect(body).toEqual(expected);
    await view.waitForURL(/#\/train\/[\w-]+$/, { timeout: PATIENCE_MS });
    const jobId = /#\/train\/([\w-]+)$/.exec(view.url())![1]!;
    await textBecomes(view, '#job-state', /^queued$/);
    const job = await expectData(client.GET('/jobs/{id}', { params: { path: { id: jobId } } }));
    expect(job.params).toMatchObject(expected);
    expect(job.params.baseVersion).not.toBe(newer);
    await view.screenshot({ path: `${ARTIFACTS}/feedback-fine-tune.png`, fullPage: true });
    await view.close();
    expect(problems).toEqual([]);
  });

  it('when an example is deleted from the gallery, then it leaves the gallery and the counts', async () => {
    const page = await open(`${base}/#/feedback`);
    await textBecomes(page, '#feedback-total', /^2 examples/);
    const figures = page.locator('#feedback-gallery figure');
    await figures.nth(1).waitFor({ timeout: PATIENCE_MS });
    const id = (await figures.first().getAttribute('data-id'))!;
    await page.getByRole('button', { name: `Delete example ${id}` }).click();
    await textBecomes(page, '#feedback-status', new RegExp(`^Example ${id} deleted\\.$`));
    await textBecomes(page, '#feedback-total', /^1 example \(/);
    expect(await figures.count()).toBe(1);
    expect(await expectData(client.GET('/feedback/examples'))).toMatchObject({
      total: 1,
    });
    await page.close();
    expect(problems).toEqual([]);
  });

  it('when corrections need the API key, then the first one asks for it and is stored with it', async () => {
    await publishDigitsModel(keyed);
    const keyedBase = await keyed.app.listen({ host: '127.0.0.1', port: 0 });
    const page = await open(`${keyedBase}/#/try`);
    await drawOne(page);
    const { classButton, predicted } = await rightBox(page);
    await classButton(otherThan(predicted)).click();
    const dialog = page.getByRole('dialog', { name: 'API key' });
    await dialog.waitFor({ state: 'visible', timeout: PATIENCE_MS });
    await dialog.getByLabel('API key').fill(API_KEY);
    await dialog.getByRole('button', { name: 'Use key' }).click();
    await textBecomes(
      page,
      '#feedback-outcome',
      new RegExp(`^Thanks: stored as \u201c${otherThan(predicted)}\u201d\\.$`),
    );
    expect(await page.evaluate("sessionStorage.getItem('digit-service.api-key')")).toBe(API_KEY);
    await page.close();
    expect(problems).toEqual([]);
  });

  it('when the rate limit is reached, then the page shows the API’s message and the buttons can be used again', async () => {
    await publishDigitsModel(limited);
    const limitedBase = await limited.app.listen({ host: '127.0.0.1', port: 0 });
    const page = await open(`${limitedBase}/#/try`);
    const file = page.getByLabel('Or choose an image of one digit (PNG or JPEG):');
    await file.setInputFiles({ name: 'a.png', mimeType: 'image/png', buffer: await mnistDigitPng(1) });
    await (await rightBox(page)).box.getByRole('button', { name: 'Yes' }).click();
    await textBecomes(page, '#feedback-outcome', /^Thanks: stored as/);

    await file.setInputFiles({ name: 'b.png', mimeType: 'image/png', buffer: await mnistDigitPng(2) });
    await (await rightBox(page)).box.getByRole('button', { name: 'Yes' }).click();
    await textBecomes(page, '#feedback-outcome', /^Not stored: rate limit of 1 requests per 3600 s reached/);
    // Nothing was decided about this image: another try later is up to the person.
    await page.locator('#feedback-yes:not([disabled])').waitFor({ timeout: PATIENCE_MS });
    await page.close();
    expect(problems).toEqual([]);
  });
});
