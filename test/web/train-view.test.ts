import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/jobs/job-schema.js';
import { startTrainingWorker } from '../../src/worker/training-worker.js';
import { accuracyAxisMin } from '../../web/src/logic/chart-scale.js';
import { useTestApi } from '../helpers/api.js';
import { gate } from '../helpers/gate.js';
import { trainAndPublish } from '../helpers/models.js';
import { untilJob } from '../helpers/training-jobs.js';
import { workerOptions } from '../helpers/training-worker.js';
import {
  ARTIFACTS,
  buildWebPage,
  layoutOn,
  PATIENCE_MS,
  textBecomes,
  useChromium,
} from '../helpers/web-page.js';

/**
 * The train page's job view (issue 18) in a real headless Chromium against a real API and worker:
 * what a page opened late shows, where the charts sit on a laptop's screen, how the accuracy axis
 * is scaled.
 */
describe("the job view, opened after the job's batches", () => {
  const api = useTestApi('train-view', async ({ dir }) => ({
    web: { root: await buildWebPage(join(dir, 'web')) },
  }));
  const chromium = useChromium(join(api.dir, 'profile'));
  let worker: Awaited<ReturnType<typeof startTrainingWorker>>;
  let base: string;

  beforeAll(async () => {
    // A version to fine-tune from (~93 % right), so the job's accuracies are high from its start.
    (await trainAndPublish(api.store, { trainSize: 10_000, augment: true, seed: 1 })).dispose();
    base = await api.app.listen({ host: '127.0.0.1', port: 0 });
    // The API's own jobs, so the test can step in where the worker claims the right to publish.
    worker = await startTrainingWorker(workerOptions(api, { jobs: api.jobs }));
  });

  afterAll(async () => {
    await worker?.close();
  });

  /** Each chart's per-batch and per-epoch point counts, as the page says (data-points). */
  const points = async (page: Page, chart: string) =>
    ((await page.locator(chart).getAttribute('data-points')) ?? '0/0').split('/').map(Number);

  it(
    'when the job view opens once the job has trained (held before it publishes), then its charts show every batch from the start, on the first screen at 1280x1000, the accuracy axis scaled to the data',
    { timeout: 120_000 },
    async () => {
      // Held where the worker, its training and evaluation done, claims the right to publish: the
      // job is active and every batch it trains has been trained before the page opens.
      const held = gate();
      const claim = api.jobs.endings.claimPublishing.bind(api.jobs.endings);
      api.jobs.endings.claimPublishing = async (id, token) => {
        await held.pass();
        return claim(id, token);
      };
      const posted = await fetch(`${base}/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ baseVersion: 1, epochs: 2, trainSize: 2000, validationSize: 500, seed: 3 }),
      });
      expect(posted.status).toBe(202);
      const { id } = (await posted.json()) as JobView;
      await held.arrived;
      // The last progress is written on the worker's way to the claim; polled until it has landed.
      const trained = await untilJob(api.jobs, id, (v) => v.history.length === 2 && v.state === 'active');
      const curve = trained.batchHistory;
      // 32 batches an epoch: each epoch's end is kept, and the first batch before them.
      expect(curve.map((p) => p.x)).toEqual(expect.arrayContaining([1, 2]));
      expect(curve[0]!.x).toBeLessThan(1);

      const page = await chromium.open(`${base}/#/train/${id}`);
      await page.setViewportSize({ width: 1280, height: 1000 });
      await expect
        .poll(() => layoutOn(page, 1280), { timeout: PATIENCE_MS })
        .toMatchObject({ settled: true });
      await textBecomes(page, '#job-state', /^active$/);
      // Nothing is reported while the job is held: every point drawn is one from before the page opened.
      await expect
        .poll(() => points(page, '#loss-chart'), { timeout: PATIENCE_MS })
        .toEqual([curve.length, 2]);
      expect(await points(page, '#accuracy-chart')).toEqual([curve.length, 2]);

      // On the first screen, without scrolling: both charts whole; the form folded under its heading.
      expect(await page.evaluate<number>('window.scrollY')).toBe(0);
      for (const chart of ['#loss-chart canvas', '#accuracy-chart canvas']) {
        const box = (await page.locator(chart).boundingBox())!;
        expect(box.height).toBeGreaterThan(200);
        expect(box.y + box.height).toBeLessThanOrEqual(1000);
      }
      expect(await page.locator('#new-job').getAttribute('open')).toBeNull();
      expect(await page.getByLabel('Epochs', { exact: true }).isVisible()).toBe(false);

      // The axis starts where the data says (not at 0), under the lowest accuracy shown.
      const yMin = Number(await page.locator('#accuracy-chart').getAttribute('data-y-min'));
      const batchAccuracy = curve.map((p) => ({ x: p.x, y: p.accuracy }));
      const epochAccuracy = trained.history.flatMap((h) => [
        { x: h.epoch, y: h.accuracy },
        ...(h.valAccuracy === null ? [] : [{ x: h.epoch, y: h.valAccuracy }]),
      ]);
      expect(yMin).toBe(accuracyAxisMin(batchAccuracy, epochAccuracy));
      expect(yMin).toBeGreaterThan(0);
      expect(yMin).toBeLessThan(Math.min(...epochAccuracy.map((p) => p.y)));
      await page.screenshot({ path: `${ARTIFACTS}/train-view-1280x1000.png` });

      // The form is a click away.
      await page.getByText('Train a model', { exact: true }).click();
      await page.getByLabel('Epochs', { exact: true }).waitFor({ state: 'visible', timeout: PATIENCE_MS });

      // Let it publish: the view ends completed, its curve still from the start.
      held.open();
      await textBecomes(page, '#job-state', /^completed$/, 60_000);
      api.jobs.endings.claimPublishing = claim;
      const final = (await api.jobs.get(id))!;
      expect(final.batchHistory).toEqual(curve);
      expect(await points(page, '#loss-chart')).toEqual([curve.length, 2]);

      // A phone: the charts one under the other, nothing wider than the screen.
      await page.setViewportSize({ width: 390, height: 844 });
      await expect.poll(() => layoutOn(page, 390), { timeout: PATIENCE_MS }).toMatchObject({ settled: true });
      await page.screenshot({ path: `${ARTIFACTS}/train-view-phone.png`, fullPage: true });
      await page.close();
      expect(chromium.problems).toEqual([]);
    },
  );
});
