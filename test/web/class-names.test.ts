import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FASHION_MNIST_CLASSES } from '../../src/ml/data/dataset.js';
import { useTestApi } from '../helpers/api.js';
import { publishUntrained } from '../helpers/models.js';
import { trainingReportFixture } from '../helpers/training-report.js';
import {
  ARTIFACTS,
  buildWebPage,
  drawOne,
  layoutOn,
  PATIENCE_MS,
  text,
  textBecomes,
  useChromium,
} from '../helpers/web-page.js';

/**
 * Class names on the web page (issue 15) in Chromium: a version trained on Fashion-MNIST is read
 * and shown by garment names, and names a user uploaded (which the schema keeps free of < and >)
 * show as the very text they are, however they look to an HTML parser.
 */

// 64 characters, the longest a name may be.
const LONG = 'A very long class name that must not widen the confusion matrix';
/** Names an HTML parser would change ('&amp;' would show as '&'), quotes, non-Latin scripts. */
const ODD_CLASSES = [
  'Fish &amp; chips',
  "it's 'quoted'",
  'Ёлка',
  '日本語',
  'العربية',
  'Crème brûlée',
  '#1 (best) @home',
  LONG,
  'x/y+z',
  '&lt;b&gt;',
];
const UPLOADED_ID = 'symbols-3kq9x2ab';

describe('class names on the web page', () => {
  const api = useTestApi('web-classes', async ({ dir }) => ({
    web: { root: await buildWebPage(join(dir, 'web')) },
  }));
  const { problems, open } = useChromium(join(api.dir, 'profile'));
  let base: string;
  const params = trainingReportFixture().params;
  let odd: number;
  let fashion: number;

  beforeAll(async () => {
    // Untrained seed weights: any answer is some class, which is all these tests read.
    odd = await publishUntrained(
      api.store,
      trainingReportFixture({ classes: ODD_CLASSES, params: { ...params, dataset: UPLOADED_ID } }),
    );
    // Published last, so it is the one served.
    fashion = await publishUntrained(
      api.store,
      trainingReportFixture({
        classes: [...FASHION_MNIST_CLASSES],
        params: { ...params, dataset: 'fashion-mnist' },
      }),
    );
    await api.predictor.refresh();
    base = await api.app.listen({ host: '127.0.0.1', port: 0 });
  });

  it('when something is drawn for a Fashion-MNIST version, then the answer and every bar are garment names', async () => {
    const page = await open(`${base}/#/try`);
    // The served version's names show before anything is drawn.
    await page.locator('#model-classes li').nth(9).waitFor({ state: 'attached', timeout: PATIENCE_MS });
    expect(await page.locator('#model-classes li').allTextContents()).toEqual(FASHION_MNIST_CLASSES);

    await drawOne(page);
    await page.locator('#probabilities li').nth(9).waitFor({ state: 'attached', timeout: PATIENCE_MS });
    expect(await text(page, '#model-version')).toBe(String(fashion));
    expect(FASHION_MNIST_CLASSES).toContain(await text(page, '#predicted-label'));
    const bars = await page.locator('#probabilities li').allTextContents();
    expect(bars.map((t) => t.replace(/: [\d.]+ %$/, ''))).toEqual(FASHION_MNIST_CLASSES);
    // "Right?" offers the version's own classes to correct it with (issue 17).
    expect(await page.locator('#feedback-classes button').allTextContents()).toEqual(FASHION_MNIST_CLASSES);
    await page.screenshot({ path: `${ARTIFACTS}/try-it-fashion.png`, fullPage: true });

    // 'T-shirt/top' and 'Ankle boot' on a phone: the answer wraps, the page does not scroll sideways.
    await page.setViewportSize({ width: 390, height: 844 });
    await expect.poll(() => layoutOn(page, 390), { timeout: PATIENCE_MS }).toMatchObject({ settled: true });
    await page.close();
    expect(problems).toEqual([]);
  });

  it('when the Fashion-MNIST version is opened, then the matrix and the gallery name garments', async () => {
    const page = await open(`${base}/#/models/${fashion}`);
    await page.locator('#confusion-matrix').waitFor({ timeout: PATIENCE_MS });
    const columns = await page.locator('#confusion-matrix thead th .class-name').allTextContents();
    expect(columns).toEqual(FASHION_MNIST_CLASSES);
    expect(await page.locator('#confusion-matrix tbody th').allTextContents()).toEqual(FASHION_MNIST_CLASSES);
    // The fixture's errors: a 4 taken for a 6, a 7 for a 2.
    expect(await page.locator('#misclassified figcaption').allInnerTexts()).toEqual([
      'true Coat, predicted Shirt\n97 %',
      'true Sneaker, predicted Pullover\n91 %',
    ]);
    const cell = page.locator('#confusion-matrix tbody tr').nth(4).locator('td').nth(5);
    expect(await cell.getAttribute('title')).toMatch(/^true Coat, predicted Sandal: 14 \(/);
    await page.screenshot({ path: `${ARTIFACTS}/model-fashion.png`, fullPage: true });
    await page.close();
    expect(problems).toEqual([]);
  });

  it('when names hold &, entities, quotes and other scripts, then the page shows them as written, and long ones are cut with a tooltip', async () => {
    const page = await open(`${base}/#/models/${odd}`);
    await page.locator('#confusion-matrix').waitFor({ timeout: PATIENCE_MS });
    const headers = page.locator('#confusion-matrix thead th .class-name');
    // innerText is what a person sees: an entity parsed as HTML would show as '&' or '<b>'.
    expect(await headers.allInnerTexts()).toEqual(ODD_CLASSES);
    expect(await page.locator('#confusion-matrix tbody th .class-name').allInnerTexts()).toEqual(ODD_CLASSES);
    expect(await page.locator('#confusion-matrix b, #misclassified b').count()).toBe(0);
    // The fixture's errors: a 4 taken for a 6, a 7 for a 2.
    expect(await page.locator('#misclassified figcaption').allInnerTexts()).toEqual([
      'true العربية, predicted #1 (best) @home\n97 %',
      `true ${LONG}, predicted Ёлка\n91 %`,
    ]);

    // The long name's column stays narrow; the header's tooltip has it whole.
    const long = headers.nth(ODD_CLASSES.indexOf(LONG));
    expect(await long.getAttribute('title')).toBe(LONG);
    const box = (await long.boundingBox())!;
    expect(box.width).toBeLessThanOrEqual(120);
    await page.screenshot({ path: `${ARTIFACTS}/model-odd-names.png`, fullPage: true });
    await page.close();
    expect(problems).toEqual([]);
  });

  it('when the models are listed, then each row says which data set its version trained on', async () => {
    const page = await open(`${base}/#/models`);
    await textBecomes(page, '#models-table tbody tr', /Fashion-MNIST/);
    const rows = page.locator('#models-table tbody tr');
    // Newest first; an upload the page has no record of shows by its id.
    expect(await rows.nth(0).locator('.trained-on').innerText()).toBe('Fashion-MNIST, 50,000 images');
    expect(await rows.nth(1).locator('.trained-on').innerText()).toBe(`${UPLOADED_ID}, 50,000 images`);
    await page.close();
    expect(problems).toEqual([]);
  });
});
