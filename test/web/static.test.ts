import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import { PAGE_CSP } from '../../src/api/plugins/web.js';
import { bodyFromValues, fieldsFromSchema, jobBodySchema } from '../../web/src/logic/train-form.js';
import { useTestApis, type TestApi } from '../helpers/api.js';

/** The page as the API serves it; a stand-in build, so these tests need no vite run. */
describe('the web page served by the API', () => {
  const { dir, start } = useTestApis('web-static');
  let built: TestApi;
  let unbuilt: TestApi;

  beforeAll(async () => {
    const root = join(dir, 'web');
    await mkdir(join(root, 'assets'), { recursive: true });
    await writeFile(join(root, 'index.html'), '<!doctype html><title>digit-service</title>');
    await writeFile(join(root, 'assets', 'index-abc123.js'), 'export {};');
    await writeFile(join(dir, 'secret.txt'), 'SECRET');
    built = await start({ web: { root } });
    unbuilt = await start({ web: { root: join(dir, 'missing') } });
  });

  it('when / is opened, then the page comes with its own strict CSP and is revalidated each time', async () => {
    const res = await request(built.app.server).get('/').expect(200);
    expect(res.headers['content-type']).toContain('text/html');
    expect(res.text).toContain('<title>digit-service</title>');
    expect(res.headers['content-security-policy']).toBe(PAGE_CSP);
    expect(PAGE_CSP).not.toContain('unsafe-inline');
    expect(PAGE_CSP).not.toContain('unsafe-eval');
    expect(res.headers['cache-control']).toBe('no-cache');
  });

  it('when a hashed asset is fetched, then browsers may keep it for good', async () => {
    const res = await request(built.app.server).get('/assets/index-abc123.js').expect(200);
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
  });

  it('when a path is neither a file nor a route, then the API answers its usual JSON 404', async () => {
    const res = await request(built.app.server).get('/nothing-here.js').expect(404);
    expect(res.body.error.code).toBe('not_found');
  });

  it.each([
    '/../secret.txt',
    '/%2e%2e/secret.txt',
    '/..%2fsecret.txt',
    '/.%2e/secret.txt',
    '/assets/..%2f..%2fsecret.txt',
  ])('when a path tries to climb out of the page (%s), then nothing outside it is served', async (path) => {
    const res = await request(built.app.server).get(path);
    expect([400, 403, 404]).toContain(res.status);
    expect(res.text).not.toContain('SECRET');
  });

  it('when the page is served, then the API beside it is unchanged and the static files stay out of the docs', async () => {
    await request(built.app.server).get('/models').expect(200);
    await request(built.app.server).get('/healthz').expect(200);
    const spec = (await request(built.app.server).get('/openapi.json').expect(200)).body as {
      paths: Record<string, unknown>;
    };
    expect(Object.keys(spec.paths).filter((p) => p === '/' || p.startsWith('/assets') || p === '/*')).toEqual(
      [],
    );
  });

  it('when the page was never built, then / says how to build it and the API still works', async () => {
    const res = await request(unbuilt.app.server).get('/').expect(503);
    expect(res.text).toContain('npm run build:web');
    expect(res.headers['content-security-policy']).toBe(PAGE_CSP);
    await request(unbuilt.app.server).get('/healthz').expect(200);
  });

  it("when the page reads the API's own document, then the training form has every parameter with the API's defaults", async () => {
    const spec = (await request(built.app.server).get('/openapi.json').expect(200)).body as unknown;
    const fields = fieldsFromSchema(jobBodySchema(spec));
    const byName = Object.fromEntries(fields.map((f) => [f.name, f]));
    expect(Object.keys(byName)).toEqual(
      expect.arrayContaining(['architecture', 'dataset', 'epochs', 'batchSize', 'learningRate', 'optimizer']),
    );
    expect(byName.epochs).toMatchObject({ kind: 'integer', defaultValue: 10, min: 1, max: 100 });
    expect(byName.learningRate).toMatchObject({
      kind: 'number',
      defaultValue: 0.001,
      min: 0,
      minExclusive: true,
    });
    expect(byName.optimizer).toMatchObject({ kind: 'select', defaultValue: 'adam' });
    expect(byName.augment).toMatchObject({ kind: 'checkbox', defaultValue: false });
    // The defaults, sent back as the form would send them, are a body the API accepts.
    const defaults = Object.fromEntries(
      fields.map((f) => [
        f.name,
        f.kind === 'checkbox' ? f.defaultValue === true : String(f.defaultValue ?? ''),
      ]),
    );
    const body = bodyFromValues(fields, defaults);
    const res = await request(built.app.server).post('/jobs').send(body).expect(202);
    await request(built.app.server).delete(`/jobs/${res.body.id}`).expect(202);
  });
});
