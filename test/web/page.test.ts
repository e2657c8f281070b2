import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainAndPublish } from '../helpers/models.js';
import { startTrainingWorker } from '../../src/worker/training-worker.js';
import { useTestApi } from '../helpers/api.js';
import { workerOptions } from '../helpers/training-worker.js';
import {
  ARTIFACTS,
  buildWebPage,
  drawOne,
  imageSize,
  layoutOn,
  mnistDigitPng,
  optionValues,
  PATIENCE_MS,
  text,
  textBecomes,
  useChromium,
} from '../helpers/web-page.js';

/**
 * The web page (issue 6) in a real headless Chromium against a real API on a port, a real worker
 * and a small real model (test/helpers/web-page.ts).
 */
const API_KEY = 'web-page-test-key-0123456789';

describe('the web page in Chromium', () => {
  // The page as `npm run build:web` makes it, into a directory of this run's own.
  const api = useTestApi('web', async ({ dir }) => ({ web: { root: await buildWebPage(join(dir, 'web')) } }));
  const { dir } = api;
  // A second service with no model at all and an API key, and no worker: its jobs stay queued.
  const emptyApi = useTestApi('web-empty', () => ({
    web: { root: join(dir, 'web') },
    auth: { apiKey: API_KEY },
  }));
  const chromium = useChromium(join(dir, 'profile'));
  const { problems, open } = chromium;
  let worker: Awaited<ReturnType<typeof startTrainingWorker>>;
  let base: string;
  let emptyBase: string;
  let jobVersion: number | undefined;

  beforeAll(async () => {
    // One epoch on 10,000 shifted images: ~93 % right in a few seconds, enough to read a clear 1.
    (await trainAndPublish(api.store, { trainSize: 10_000, augment: true, seed: 1 })).dispose();
    await api.predictor.refresh();
    base = await api.app.listen({ host: '127.0.0.1', port: 0 });
    worker = await startTrainingWorker(workerOptions(api));
    emptyBase = await emptyApi.app.listen({ host: '127.0.0.1', port: 0 });
  });

  afterAll(async () => {
    await worker?.close();
  });

  it('when a 1 is drawn with the mouse, then the page shows the label, 10 probabilities, the version and the 28x28 input', async () => {
    const page = await open(`${base}/#/try`);
    // Before anything is drawn: a plain prompt where the reading will be, not "reads ? with —".
    const prompt = page.locator('#try-prompt');
    expect(await prompt.textContent({ timeout: PATIENCE_MS })).toMatch(/^Draw a digit/);
    expect(await prompt.isVisible()).toBe(true);
    expect(await page.locator('#reading').isVisible()).toBe(false);
    await drawOne(page);

    await page.locator('#probabilities li').nth(9).waitFor({ state: 'attached', timeout: PATIENCE_MS });
    expect(await page.locator('#reading').isVisible()).toBe(true);
    expect(await prompt.isVisible()).toBe(false);
    const probabilities = await page.locator('#probabilities li').allTextContents();
    expect(probabilities).toHaveLength(10);
    const shares = probabilities.map((t) => Number(/: ([\d.]+) %/.exec(t)![1]));
    expect(shares.reduce((a, b) => a + b, 0)).toBeGreaterThan(99);
    expect(await text(page, '#predicted-label')).toBe('1');
    expect(await text(page, '#model-version')).toBe('1');
    const seen = page.locator('#model-input');
    await seen.waitFor({ state: 'visible' });
    await expect.poll(() => imageSize(page, '#model-input')).toEqual([28, 28]);
    await page.screenshot({ path: `${ARTIFACTS}/try-it.png`, fullPage: true });

    await page.getByRole('button', { name: 'Clear' }).click();
    await prompt.waitFor({ state: 'visible' });
    expect(await page.locator('#reading').isVisible()).toBe(false);
    expect(await page.locator('#no-model').isHidden()).toBe(true);

    // A phone: one column, nothing wider than the screen, the canvas still square and whole.
    await page.setViewportSize({ width: 390, height: 844 });
    // Charts follow their boxes through a ResizeObserver: give the page a moment to settle. (Polled
    // from here: the page's CSP refuses the string evaluation that waitForFunction would use.)
    // Settled: the screen is 390 wide and nothing scrolls sideways. A failure shows what sticks out.
    await expect.poll(() => layoutOn(page, 390), { timeout: PATIENCE_MS }).toMatchObject({ settled: true });
    const layout = await page.evaluate<{ overflow: number; pad: number[] }>(`(() => {
      const pad = document.querySelector('canvas.pad').getBoundingClientRect();
      return {
        overflow: document.documentElement.scrollWidth - window.innerWidth,
        pad: [Math.round(pad.width), Math.round(pad.height), Math.round(pad.right)],
      };
    })()`);
    expect(layout.overflow).toBeLessThanOrEqual(0);
    expect(layout.pad[0]).toBe(layout.pad[1]);
    expect(layout.pad[2]).toBeLessThanOrEqual(390);
    await drawOne(page);
    await page.locator('#probabilities li').nth(9).waitFor({ state: 'attached', timeout: PATIENCE_MS });
    await page.screenshot({ path: `${ARTIFACTS}/try-it-phone.png`, fullPage: true });
    await page.close();
    expect(problems).toEqual([]);
  });

  it('when a 1 is drawn with a finger on a phone-sized touch screen, then it is read as 1 and the page does not scroll', async () => {
    const page = await open(`${base}/#/try`);
    await page.setViewportSize({ width: 390, height: 844 });
    // Chromium's own touch input, as a phone's finger produces it: touch events, from which the
    // browser makes the pointer events the pad listens to (unless CSS lets the touch scroll).
    const cdp = await chromium.browser.newCDPSession(page);
    await cdp.send('Emulation.setTouchEmulationEnabled', { enabled: true, maxTouchPoints: 1 });
    await cdp.send('Emulation.setEmitTouchEventsForMouse', { enabled: false });
    const pad = page.getByLabel('Drawing area');
    await pad.scrollIntoViewIfNeeded();
    const box = (await pad.boundingBox())!;
    const scrollBefore = await page.evaluate<number>('window.scrollY');
    const x = box.x + box.width / 2;
    const at = (t: number) => [{ x: x + box.width * 0.03 * t, y: box.y + box.height * (0.15 + 0.7 * t) }];
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: at(0) });
    for (let step = 1; step <= 15; step++) {
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: at(step / 15) });
    }
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });

    await page.locator('#probabilities li').nth(9).waitFor({ state: 'attached', timeout: PATIENCE_MS });
    expect(await text(page, '#predicted-label')).toBe('1');
    // A downward stroke that scrolled the page instead would have moved it by the stroke's length.
    expect(await page.evaluate<number>('window.scrollY')).toBe(scrollBefore);
    await page.screenshot({ path: `${ARTIFACTS}/try-it-touch.png`, fullPage: true });
    await cdp.detach();
    await page.close();
    expect(problems).toEqual([]);
  });

  it('when an image file is chosen instead of drawing (the way in without a pointer), then the page shows what the API reads in it; a GIF gets the reason it cannot', async () => {
    const png = await mnistDigitPng(0);
    const direct = await fetch(`${base}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: png,
    }).then((r) => r.json() as Promise<{ predictions: { label: number }[] }>);

    const page = await open(`${base}/#/try`);
    const file = page.getByLabel('Or choose an image of one digit (PNG or JPEG):');
    await file.focus();
    await file.setInputFiles({ name: 'digit.png', mimeType: 'image/png', buffer: png });
    await page.locator('#probabilities li').nth(9).waitFor({ state: 'attached', timeout: PATIENCE_MS });
    expect(await text(page, '#predicted-label')).toBe(String(direct.predictions[0]!.label));
    await expect.poll(() => imageSize(page, '#model-input')).toEqual([28, 28]);
    await page.screenshot({ path: `${ARTIFACTS}/try-it-file.png`, fullPage: true });

    const gif = Buffer.from('R0lGODlhAQABAAAAACwAAAAAAQABAAACAkQBADs=', 'base64');
    await file.setInputFiles({ name: 'digit.gif', mimeType: 'image/gif', buffer: gif });
    await textBecomes(page, '[role=alert]', /^Could not read the image: .*image\/gif/);
    await page.close();
    expect(problems).toEqual([]);
  });

  it(
    'when a 1-epoch job is started from the form, then a bad value is flagged at its field, the charts fill live and the job completes',
    { timeout: 90_000 },
    async () => {
      const page = await open(`${base}/#/train`);
      const epochs = page.getByLabel('Epochs', { exact: true });
      // The defaults are the API's own, read from its OpenAPI document.
      expect(await epochs.inputValue({ timeout: PATIENCE_MS })).toBe('10');
      expect(await page.getByLabel('Optimizer').inputValue()).toBe('adam');
      // What to train on: the built-ins first (from GET /datasets, or known without it), MNIST
      // chosen, and no version to fine-tune from unless one is picked.
      const dataset = page.getByLabel('Dataset', { exact: true });
      expect(await dataset.inputValue()).toBe('mnist');
      expect((await optionValues(dataset)).slice(0, 2)).toEqual(['mnist', 'fashion-mnist']);
      const baseVersion = page.getByLabel('Fine-tune from version');
      expect(await baseVersion.inputValue()).toBe('');
      expect(await baseVersion.locator('option').allTextContents()).toEqual([
        'none: start from new weights',
        expect.stringMatching(/^Version 1: MNIST, \d+\.\d % test$/),
      ]);

      // A recipe fills in its fields; the seed recipe puts the defaults back.
      const recipes = page.getByRole('group', { name: 'Recipes' });
      await recipes.getByRole('button', { name: 'Best accuracy' }).click();
      expect(await page.getByLabel('Architecture').inputValue()).toBe('wide');
      expect(await page.getByLabel('Learning rate schedule').inputValue()).toBe('cosine');
      expect(await page.getByLabel('Augment').isChecked()).toBe(true);
      await recipes.getByRole('button', { name: 'Seed recipe' }).click();
      expect(await epochs.inputValue()).toBe('10');
      // Left to the API: the base version's network when fine-tuning, else 'seed'.
      expect(await page.getByLabel('Architecture').inputValue()).toBe('');
      expect(await page.getByLabel('Augment').isChecked()).toBe(false);

      await epochs.fill('0');
      await page.getByRole('button', { name: 'Start training' }).click();
      const epochsError = page.locator('#field-epochs-error');
      await epochsError.waitFor({ state: 'visible' });
      expect(await epochsError.textContent()).toContain('>=1');
      expect(await epochs.getAttribute('aria-invalid')).toBe('true');

      await epochs.fill('1');
      await page.getByLabel('Train size').fill('5000');
      await page.getByLabel('Validation size').fill('500');
      const posted = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/jobs'));
      await page.getByRole('button', { name: 'Start training' }).click();
      // Nothing to fine-tune from was chosen: the body has no baseVersion for the API to refuse.
      const body = (await posted).postDataJSON() as Record<string, unknown>;
      expect(body).toMatchObject({ dataset: 'mnist', epochs: 1, trainSize: 5000 });
      expect(body).not.toHaveProperty('baseVersion');
      await page.locator('#job-live').waitFor({ state: 'visible' });
      expect(await epochsError.isHidden()).toBe(true);
      // A laptop's screen: the job's charts on the first screen, the form folded away under its
      // heading, however far down its button was.
      await page.setViewportSize({ width: 1280, height: 1000 });
      await expect
        .poll(() => layoutOn(page, 1280), { timeout: PATIENCE_MS })
        .toMatchObject({ settled: true });
      expect(await page.evaluate<number>('window.scrollY')).toBe(0);
      expect(await page.locator('#new-job').getAttribute('open')).toBeNull();
      for (const chart of ['#loss-chart canvas', '#accuracy-chart canvas']) {
        const box = (await page.locator(chart).boundingBox())!;
        expect(box.height).toBeGreaterThan(200);
        expect(box.y + box.height).toBeLessThanOrEqual(1000);
      }

      await textBecomes(page, '#job-state', /^active$/, 60_000);
      await textBecomes(page, '#job-state', /^(completed|failed|cancelled)$/, 75_000);
      expect(await text(page, '#job-state')).toBe('completed');
      const [batchPoints, epochPoints] = (await page.locator('#loss-chart').getAttribute('data-points'))!
        .split('/')
        .map(Number);
      expect(batchPoints).toBeGreaterThanOrEqual(1);
      expect(epochPoints).toBe(1);
      expect(await page.locator('#accuracy-chart').getAttribute('data-points')).toBe(`${batchPoints}/1`);
      expect(await text(page, '#job-rate')).toMatch(/images\/s$/);
      const outcome = (await text(page, '#job-outcome'))!;
      expect(outcome).toMatch(/^Done: model version \d+/);
      jobVersion = Number(/model version (\d+)/.exec(outcome)![1]);
      await textBecomes(page, '#jobs-table tbody tr:first-child .state', /^completed$/);
      await page.screenshot({ path: `${ARTIFACTS}/train.png`, fullPage: true });
      // A phone: the form, its dataset preview and the jobs table stay inside the screen.
      await page.setViewportSize({ width: 390, height: 844 });
      await expect.poll(() => layoutOn(page, 390), { timeout: PATIENCE_MS }).toMatchObject({ settled: true });
      await page.screenshot({ path: `${ARTIFACTS}/train-phone.png`, fullPage: true });
      await page.close();
      expect(problems).toEqual([]);
    },
  );

  it("when the job's model is opened, then its accuracy, confusion heat map and misclassified digits show, and it can be promoted", async () => {
    expect(jobVersion, 'the job test made a version').toBeDefined();
    const page = await open(`${base}/#/models`);
    await page.getByRole('link', { name: `Version ${jobVersion}` }).click();
    await page.locator('#accuracy-table').waitFor({ timeout: PATIENCE_MS });
    expect(await page.locator('#accuracy-table tbody th').allTextContents()).toEqual([
      'Train',
      'Validation',
      'Test',
    ]);
    const cells = page.locator('#confusion-matrix tbody td');
    expect(await cells.count()).toBe(100);
    // The colours are set through the CSSOM (the CSP forbids style attributes in markup).
    const diagonal = await page.locator('#confusion-matrix td.diagonal').first().getAttribute('style');
    const background = /background-color: (rgb\([^)]*\))/.exec(diagonal ?? '')?.[1];
    expect(background).toBeDefined();
    expect(background).not.toBe('rgb(255, 255, 255)');

    const first = page.locator('#misclassified figure').first();
    await first.scrollIntoViewIfNeeded();
    expect(await first.locator('figcaption').textContent()).toMatch(/^true \d, predicted \d/);
    await expect
      .poll(() => imageSize(page, '#misclassified img'), { timeout: PATIENCE_MS })
      .toEqual([28, 28]);

    await page.getByRole('button', { name: `Promote version ${jobVersion} to production` }).click();
    await textBecomes(page, '#model-status', new RegExp(`^Version ${jobVersion} is now production\\.$`));
    await page.locator('h2 .badge', { hasText: 'production' }).waitFor({ timeout: PATIENCE_MS });
    await page.screenshot({ path: `${ARTIFACTS}/model.png`, fullPage: true });
    await page.close();
    expect(problems).toEqual([]);
  });

  it('when no model exists, then the page says so, and its button asks for the API key, starts a job that can be cancelled', async () => {
    const page = await open(`${emptyBase}/#/try`);
    const notice = page.locator('#no-model');
    await notice.waitFor({ state: 'visible', timeout: PATIENCE_MS });
    expect(await notice.textContent()).toContain('No model is trained yet');
    await page.screenshot({ path: `${ARTIFACTS}/no-model.png`, fullPage: true });

    await page.getByRole('button', { name: 'Train a quick model' }).click();
    const dialog = page.getByRole('dialog', { name: 'API key' });
    await dialog.waitFor({ state: 'visible' });
    await dialog.getByLabel('API key').fill(API_KEY);
    await dialog.getByRole('button', { name: 'Use key' }).click();

    await page.waitForURL(/#\/train\/[\w-]+$/, { timeout: PATIENCE_MS });
    await textBecomes(page, '#job-state', /^queued$/);
    await page.getByRole('button', { name: 'Cancel job' }).click();
    await textBecomes(page, '#job-state', /^cancelled$/);
    expect(await page.evaluate("sessionStorage.getItem('digit-service.api-key')")).toBe(API_KEY);
    await page.close();
    expect(problems).toEqual([]);
  });
});
