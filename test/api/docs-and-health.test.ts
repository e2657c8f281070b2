import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { startTestApi, useTestApi } from '../helpers/api.js';
import { feedbackParts } from '../helpers/feedback.js';

type Operation = { requestBody?: unknown; parameters?: unknown[]; responses: Record<string, unknown> };

describe('OpenAPI docs and health', () => {
  const served = useTestApi('docs', (scope) => ({ feedback: feedbackParts(scope) }));
  const { redis, prefix, dir } = served;

  it('when /openapi.json is fetched, then every route is documented with its inputs, answers and error codes', async () => {
    const spec = (await request(served.app.server).get('/openapi.json').expect(200)).body as {
      openapi: string;
      paths: Record<string, Record<string, Operation>>;
    };
    expect(spec.openapi).toMatch(/^3\./);
    const expected: Record<string, string[]> = {
      '/jobs': ['post', 'get'],
      '/jobs/{id}': ['get', 'delete'],
      '/jobs/{id}/events': ['get'],
      '/predict': ['post'],
      '/datasets': ['post', 'get'],
      '/datasets/{id}': ['get', 'delete'],
      '/datasets/{id}/samples.png': ['get'],
      '/models': ['get'],
      '/models/{version}': ['get', 'delete'],
      '/models/aliases': ['get'],
      '/models/aliases/{name}': ['put', 'delete'],
      '/feedback': ['post', 'get'],
      '/feedback/examples': ['get'],
      '/feedback/samples.png': ['get'],
      '/feedback/{id}': ['delete'],
      '/healthz': ['get'],
      '/readyz': ['get'],
    };
    for (const [path, methods] of Object.entries(expected)) {
      for (const method of methods) {
        const op = spec.paths[path]?.[method];
        expect(op, `${method.toUpperCase()} ${path}`).toBeDefined();
        const codes = Object.keys(op!.responses);
        expect(
          codes.some((c) => c.startsWith('2')),
          `${method} ${path} success`,
        ).toBe(true);
        if (op!.requestBody || op!.parameters?.length) {
          expect(
            codes.some((c) => c.startsWith('4')),
            `${method} ${path} documents its 4xx`,
          ).toBe(true);
        }
      }
    }
    const postJobs = spec.paths['/jobs']!.post! as {
      requestBody: { content: Record<string, { schema: { properties: object } }> };
    };
    expect(Object.keys(postJobs.requestBody.content['application/json']!.schema.properties)).toEqual(
      expect.arrayContaining([
        'epochs',
        'batchSize',
        'learningRate',
        'optimizer',
        'architecture',
        'dataset',
        'seed',
      ]),
    );
    const upload = spec.paths['/datasets']!.post! as { requestBody: { content: Record<string, unknown> } };
    expect(Object.keys(upload.requestBody.content)).toEqual(['application/zip', 'text/csv']);
    expect(Object.keys(spec.paths).filter((p) => p.startsWith('/docs'))).toEqual([]);
  });

  it('when a person opens /docs, then the browsable documentation is served', async () => {
    const res = await request(served.app.server).get('/docs/').redirects(2);
    expect(res.status).toBe(200);
    expect(res.text).toContain('swagger');
  });

  it('when Redis answers and the store is readable, then /healthz and /readyz say so, with no model loaded yet', async () => {
    expect((await request(served.app.server).get('/healthz').expect(200)).body).toEqual({ status: 'ok' });
    const ready = await request(served.app.server).get('/readyz').expect(200);
    expect(ready.body).toEqual({
      ready: true,
      shuttingDown: false,
      checks: { redis: { ok: true }, modelStore: { ok: true } },
      model: { loaded: false, version: null },
    });
  });

  it('when Redis cannot be reached, then /readyz answers 503 naming it, and /healthz still 200', async () => {
    const unreachable = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    unreachable.on('error', () => undefined);
    const down = await startTestApi(unreachable, prefix, join(dir, 'models'));
    try {
      const res = await request(down.app.server).get('/readyz').expect(503);
      expect(res.body.ready).toBe(false);
      expect(res.body.checks.redis.ok).toBe(false);
      // The client error's own text (addresses, errno) stays in the log.
      expect(res.body.checks.redis.error).toBe('Redis does not answer');
      await request(down.app.server).get('/healthz').expect(200);
    } finally {
      await down.close().catch(() => undefined);
      unreachable.disconnect();
    }
  });

  it('when the model store cannot be read, then /readyz answers 503 saying so, without the server path or errno', async () => {
    // A regular file where a directory should be: access() fails with ENOTDIR, even for root.
    await writeFile(join(dir, 'not-a-dir'), '');
    const broken = await startTestApi(redis, prefix, join(dir, 'not-a-dir', 'models'));
    try {
      const res = await request(broken.app.server).get('/readyz').expect(503);
      expect(res.body.checks.modelStore).toEqual({ ok: false, error: 'the model store cannot be read' });
      expect(JSON.stringify(res.body)).not.toContain(dir);
    } finally {
      await broken.close();
    }
  });
});
