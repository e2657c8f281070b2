import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_WEB_ROOT } from '../../src/api/plugins/web.js';
import { feedbackSplit } from '../../src/feedback/feedback-schema.js';
import { S3Objects } from '../../src/store/s3-objects.js';
import { mnistPngs } from '../datasets/dataset-fixtures.js';
import { exited } from '../helpers/processes.js';
import { REDIS_URL, removePrefix } from '../helpers/redis.js';
import { freePort } from '../helpers/redis-server.js';
import { S3_CREDENTIALS, S3Server } from '../helpers/s3-server.js';
import { until } from '../helpers/until.js';
import { ARTIFACTS, buildWebPage, drawOne, PATIENCE_MS, text, useChromium } from '../helpers/web-page.js';
import { zipArchive } from '../helpers/zip-archive.js';

/**
 * The whole service as `npm start` runs it (API and a worker, each its own process), configured
 * only by STORE_URL=s3://... against a real S3-protocol server: datasets, jobs, /predict, aliases
 * and the web page, with nothing written to a local store directory.
 */
describe('the service on an S3-compatible store', () => {
  let dir: string;
  let s3: S3Server;
  let main: ChildProcess;
  let output = '';
  let url: string;
  const prefix = `test-s3-service-${process.pid}`;
  const chromium = useChromium(join(tmpdir(), `s3-service-chromium-${process.pid}`));

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are read as the docs describe them
  const call = async (path: string, init: RequestInit = {}): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${url}${path}`, init);
    const type = res.headers.get('content-type') ?? '';
    return { status: res.status, body: type.includes('json') ? await res.json() : await res.arrayBuffer() };
  };
  const trained = async (body: object): Promise<number> => {
    const job = await call('/jobs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(job.status).toBe(202);
    const final = await until(
      `job ${job.body.id} to finish`,
      async () => {
        const view = (await call(`/jobs/${job.body.id}`)).body;
        return view.finishedAt ? view : undefined;
      },
      { timeoutMs: 300_000, everyMs: 200 },
    );
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    return final.result.modelVersion;
  };

  beforeAll(async () => {
    // As `npm start`'s prestart does; a clean clone has no page built.
    if (!existsSync(join(DEFAULT_WEB_ROOT, 'index.html'))) await buildWebPage(DEFAULT_WEB_ROOT);
    dir = await mkdtemp(join(tmpdir(), 's3-service-'));
    s3 = await S3Server.start(join(dir, 's3'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    main = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: process.cwd(),
      env: {
        ...process.env,
        ...s3.env(`${prefix}/`),
        STORE_CACHE_DIR: join(dir, 'cache'),
        REDIS_URL,
        REDIS_PREFIX: prefix,
        PORT: String(port),
        WORKERS: '1',
        TF_BACKEND: 'wasm',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    main.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    main.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await until(
      'the service to be ready',
      async () => {
        if (main.exitCode !== null) throw new Error(`the service exited: ${output}`);
        return (
          (await fetch(`${url}/readyz`).then(
            (r) => r.ok,
            () => false,
          )) || undefined
        );
      },
      { timeoutMs: 120_000, everyMs: 100 },
    );
  }, 150_000);

  afterAll(async () => {
    if (main && main.exitCode === null) {
      const done = exited(main);
      main.kill('SIGTERM');
      await done;
    }
    await s3?.stop();
    await rm(dir, { recursive: true, force: true });
    // The service's own keys (jobs, aliases, feedback figures): the run leaves none behind.
    const redis = new Redis(REDIS_URL);
    await removePrefix(redis, prefix);
    await redis.quit();
  }, 60_000);

  let datasetId: string;
  let first: number;
  let second: number;

  it('when a folder zip is uploaded, then it is stored in the bucket and listed with its classes', async () => {
    const entries = [];
    for (const [folder, digit] of [
      ['one', 1],
      ['zero', 0],
    ] as const) {
      const pngs = await mnistPngs(digit, 60);
      entries.push(...pngs.map((data, i) => ({ name: `${folder}/${i}.png`, data })));
    }
    const upload = await call('/datasets?name=Two%20digits', {
      method: 'POST',
      headers: { 'content-type': 'application/zip' },
      body: zipArchive(entries),
    });
    expect(upload.status).toBe(201);
    datasetId = upload.body.id;
    expect(upload.body.classes).toEqual(['one', 'zero']);
    const listed = (await call('/datasets')).body.datasets.map((d: { id: string }) => d.id);
    expect(listed).toContain(datasetId);
    expect((await call(`/datasets/${datasetId}/samples.png`)).status).toBe(200);

    const objects = S3Objects.open(s3.location(`${prefix}/`, join(dir, 'unused')), {
      credentials: S3_CREDENTIALS,
    });
    const names = (await objects.list(`datasets/${datasetId}/`)).map((o) => o.name);
    objects.close();
    expect(names).toContain(`datasets/${datasetId}/dataset.json`);
    expect(names).toContain(`datasets/${datasetId}/train-images-idx3-ubyte`);
  });

  it('when jobs train on the upload and on MNIST, then both versions are in the bucket and /predict serves the newest', async () => {
    first = await trained({ dataset: datasetId, epochs: 1, seed: 2 });
    second = await trained({ dataset: 'mnist', epochs: 1, trainSize: 1000, validationSize: 0 });
    expect(second).toBeGreaterThan(first);
    const [seven] = await mnistPngs(7, 1, 10);
    const answer = await until(
      `the API to serve version ${second}`,
      async () => {
        const res = await call('/predict', {
          method: 'POST',
          headers: { 'content-type': 'image/png' },
          body: seven,
        });
        return res.status === 200 && res.body.modelVersion === second ? res.body : undefined;
      },
      { timeoutMs: 60_000, everyMs: 100 },
    );
    expect(answer.predictions[0].probabilities).toHaveLength(10);
    const upload = await call(`/predict?version=${first}`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: seven,
    });
    expect(upload.body.predictions[0].class).toMatch(/^(one|zero)$/);

    const objects = S3Objects.open(s3.location(`${prefix}/`, join(dir, 'unused')), {
      credentials: S3_CREDENTIALS,
    });
    const names = (await objects.list('models/')).map((o) => o.name);
    objects.close();
    for (const v of [first, second]) {
      expect(names).toEqual(
        expect.arrayContaining([
          `models/${v}/metadata.json`,
          `models/${v}/model.json`,
          `models/${v}/weights.bin`,
        ]),
      );
    }
    // The worker trained from its local copy of the upload; nothing went to a ./data store.
    expect(await readdir(join(dir, 'cache', 'datasets'))).toContain(datasetId);
    expect(existsSync(join(process.cwd(), 'data', 'models', String(second), 'metadata.json'))).toBe(false);
  });

  it('when an alias is set and a version deleted, then /predict follows the alias and the version is gone', async () => {
    const alias = await call('/models/aliases/production', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ version: second }),
    });
    expect(alias.status).toBe(200);
    const [one] = await mnistPngs(1, 1, 10);
    const byAlias = await call('/predict?version=production', {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: one,
    });
    expect(byAlias.body.modelVersion).toBe(second);
    expect((await call(`/models/${first}`, { method: 'DELETE' })).status).toBe(204);
    expect((await call(`/models/${first}`)).status).toBe(404);
    const listed = (await call('/models')).body.models.map((m: { version: number }) => m.version);
    expect(listed).toEqual([second]);
  });

  it('when the web page is opened, then it lists the version from the bucket and reads a drawn 1 with it', async () => {
    const page = await chromium.open(`${url}/#/try`);
    await drawOne(page);
    await page.locator('#probabilities li').nth(9).waitFor({ state: 'attached', timeout: PATIENCE_MS });
    expect(await text(page, '#model-version')).toBe(String(second));
    await page.goto(`${url}/#/models`);
    await page.getByRole('link', { name: `Version ${second}` }).waitFor({ timeout: PATIENCE_MS });
    await page.screenshot({ path: `${ARTIFACTS}/s3-store-models.png`, fullPage: true });
    await page.close();
    expect(chromium.problems).toEqual([]);
  });

  it('when corrections are sent and production is fine-tuned on mnist + feedback, then they are in the bucket, trained on, and each version is measured on them', async () => {
    const ids: string[] = [];
    for (const digit of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) {
      const [png] = await mnistPngs(digit, 1, 20);
      const sent = await call(`/feedback?label=${digit}&modelVersion=${second}`, {
        method: 'POST',
        headers: { 'content-type': 'image/png' },
        body: png!,
      });
      expect(sent.status).toBe(201);
      ids.push(sent.body.id);
    }
    const objects = S3Objects.open(s3.location(`${prefix}/`, join(dir, 'unused')), {
      credentials: S3_CREDENTIALS,
    });
    const names = (await objects.list('feedback/')).map((o) => o.name);
    objects.close();
    expect(names.sort()).toEqual(ids.map((id) => `feedback/${id}.json`).sort());

    const third = await trained({
      datasets: ['mnist', 'feedback'],
      feedbackWeight: 5,
      baseVersion: 'production',
      epochs: 1,
      trainSize: 500,
      validationSize: 100,
      learningRate: 0.0003,
    });
    const metadata = (await call(`/models/${third}`)).body;
    expect(metadata.params).toMatchObject({ baseVersion: second, datasets: ['mnist', 'feedback'] });
    const trainIds = ids.filter((id) => feedbackSplit(id) === 'train');
    expect(metadata.sources).toContainEqual(
      expect.objectContaining({
        dataset: 'feedback',
        examples: trainIds.length,
        images: 5 * trainIds.length,
      }),
    );
    // Measured in the background: every example for the version that never saw feedback, only
    // the held-out ones for the one trained on them.
    const summary = await until(
      'both versions measured at the current revision',
      async () => {
        const body = (await call('/feedback')).body;
        const current = body.versions.filter((v: { revision: number }) => v.revision === body.revision);
        return current.length === 2 && !body.pending ? body : undefined;
      },
      { timeoutMs: 120_000, everyMs: 200 },
    );
    expect(summary.total).toBe(10);
    const byVersion = new Map(summary.versions.map((v: { version: number }) => [v.version, v]));
    expect(byVersion.get(second)).toMatchObject({ examples: 10, trainedOnFeedback: false });
    expect(byVersion.get(third)).toMatchObject({
      examples: ids.length - trainIds.length,
      trainedOnFeedback: true,
    });
    expect((await call(`/models/${third}`)).body.feedback).toMatchObject({ version: third });
  });
});
