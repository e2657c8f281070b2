import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import { errorBodySchema } from '../../src/api/error-handler.js';
import { ERROR_CODES, errorBody, type ErrorCode } from '../../src/error-codes.js';
import { DomainError } from '../../src/errors.js';
import { useTestApi, useTestApis } from '../helpers/api.js';
import { feedbackParts, type FeedbackParts } from '../helpers/feedback.js';
import { publishUntrained } from '../helpers/models.js';
import { bodyOf, sendRaw } from '../helpers/raw-http.js';
import { send, type RouteRequest } from '../helpers/route-requests.js';
import { trainingReportFixture } from '../helpers/training-report.js';

/** The answer is an error with `code`, and the status src/error-codes.ts gives that code. */
function expectError(res: { status: number; body: unknown }, code: ErrorCode): { message: string } {
  const { error } = errorBodySchema.parse(res.body);
  expect({ status: res.status, code: error.code }).toEqual({ status: ERROR_CODES[code].status, code });
  return error;
}

const IMAGE_ROUTE_TYPES = 'application/json, image/png or image/jpeg';

/** Every route that takes a body, what it takes, and a body it would take as JSON. */
const BODY_ROUTES: { method: string; path: string; spec: string; takes: string; json: string }[] = [
  { method: 'POST', path: '/predict', spec: '/predict', takes: IMAGE_ROUTE_TYPES, json: '{"images":[]}' },
  { method: 'POST', path: '/jobs', spec: '/jobs', takes: 'application/json', json: '{"epochs":1}' },
  {
    method: 'PUT',
    path: '/models/aliases/production',
    spec: '/models/aliases/{name}',
    takes: 'application/json',
    json: '{"version":2}',
  },
  { method: 'POST', path: '/feedback', spec: '/feedback', takes: IMAGE_ROUTE_TYPES, json: '{"label":1}' },
  {
    method: 'POST',
    path: '/datasets?name=plain',
    spec: '/datasets',
    takes: 'application/zip or text/csv',
    json: '{"name":"plain"}',
  },
];

const to = (route: (typeof BODY_ROUTES)[number], type: string, body: string): RouteRequest => ({
  method: route.method,
  path: route.path,
  headers: { 'content-type': type },
  body: Buffer.from(body),
});

describe('bodies of a type a route does not take, and bodies that are not JSON', () => {
  let feedback: FeedbackParts;
  const api = useTestApi('error-answers', (scope) => {
    feedback = feedbackParts(scope);
    return { feedback };
  });

  beforeAll(async () => {
    const first = await publishUntrained(api.store, trainingReportFixture(), 1);
    await publishUntrained(api.store, trainingReportFixture(), 2);
    await api.aliases.set('production', first);
  });

  /** What a refused request must leave as it was: jobs, aliases, datasets, feedback. */
  async function state() {
    return {
      jobs: (await api.jobs.list({ limit: 1, offset: 0 })).total,
      aliases: await api.aliases.all(),
      datasets: (await api.datasets.list()).map((d) => d.id),
      feedback: await feedback.store.count(),
    };
  }

  it('when the spec lists the routes that take a body, then each is one this file tests', async () => {
    const spec = (await request(api.app.server).get('/openapi.json').expect(200)).body as {
      paths: Record<string, Record<string, { requestBody?: unknown }>>;
    };
    const withBody = Object.entries(spec.paths).flatMap(([path, operations]) =>
      Object.entries(operations)
        .filter(([, operation]) => operation.requestBody !== undefined)
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    );
    expect(withBody.sort()).toEqual(BODY_ROUTES.map((r) => `${r.method} ${r.spec}`).sort());
  });

  describe.each(BODY_ROUTES)('$method $path', (route) => {
    it.each([
      ['text/plain', 'a JSON text'],
      ['text/plain', ''],
      ['text/plain; charset=utf-8', 'a JSON text'],
      ['application/xml', '<a/>'],
    ])(
      'when the body is %s (%j), then 415 unsupported_media_type naming what the route takes, and nothing changes',
      async (type, body) => {
        const before = await state();
        const res = await send(api.app.server, to(route, type, body === 'a JSON text' ? route.json : body));
        const error = expectError(res, 'unsupported_media_type');
        expect(error.message).toBe(`Content-Type ${type} is not accepted here; send ${route.takes}`);
        expect(await state()).toEqual(before);
      },
    );
  });

  describe.each(BODY_ROUTES.filter((r) => r.takes.startsWith('application/json')))(
    '$method $path',
    (route) => {
      it.each([
        ['not JSON', '{"version": 2', 'invalid_json', 'the body is not valid JSON'],
        ['JSON with a __proto__ key', '{"__proto__": {"admin": true}}', 'invalid_json', '__proto__'],
        ['empty', '', 'empty_body', 'the body is empty'],
      ] as const)(
        'when the JSON body is %s, then 400 %s (not a framework code), and nothing changes',
        async (_what, body, code, message) => {
          const before = await state();
          const error = expectError(await send(api.app.server, to(route, 'application/json', body)), code);
          expect(error.message).toContain(message);
          expect(await state()).toEqual(before);
        },
      );
    },
  );

  it('when a route that takes no body gets one of another type, then 415 saying it takes none, and nothing is deleted', async () => {
    const before = await state();
    const res = await send(api.app.server, {
      method: 'DELETE',
      path: '/models/aliases/production',
      headers: { 'content-type': 'text/plain' },
      body: Buffer.from('please'),
    });
    expect(expectError(res, 'unsupported_media_type').message).toBe(
      'Content-Type text/plain is not accepted here; this route takes no body',
    );
    expect(await state()).toEqual(before);
  });

  it('when the body is over the limit, then 413 payload_too_large naming the limit', async () => {
    const res = await send(
      api.app.server,
      to(BODY_ROUTES[1]!, 'application/json', JSON.stringify({ pad: 'x'.repeat(1024 * 1024) })),
    );
    expect(expectError(res, 'payload_too_large').message).toBe(
      `the body is over this route's limit of ${1024 * 1024} bytes`,
    );
  });
});

describe("the web page's files", () => {
  const { dir, start } = useTestApis('error-answers-web');
  let port: number;
  let server: Awaited<ReturnType<typeof start>>['app']['server'];

  beforeAll(async () => {
    const root = join(dir, 'web');
    await mkdir(join(root, 'assets'), { recursive: true });
    await writeFile(join(root, 'index.html'), '<!doctype html><title>digit-service</title>');
    await writeFile(join(root, 'assets', 'index-abc123.js'), 'export {};');
    const api = await start({ web: { root } });
    port = await api.listen();
    server = api.app.server;
  });

  it('when a Range is outside the file, then 416 range_not_satisfiable', async () => {
    expectError(
      await request(server).get('/assets/index-abc123.js').set('range', 'bytes=9999-'),
      'range_not_satisfiable',
    );
  });

  it('when If-Match names another version, then 412 precondition_failed', async () => {
    expectError(
      await request(server).get('/assets/index-abc123.js').set('if-match', '"other"'),
      'precondition_failed',
    );
  });

  it.each(['/assets/./index-abc123.js', '/assets//index-abc123.js'])(
    'when the path %s is not canonical, then 403 forbidden_path, not a framework code',
    async (path) => {
      const answer = await sendRaw(port, { method: 'GET', path });
      expectError({ status: answer.status!, body: bodyOf(answer.text) }, 'forbidden_path');
    },
  );
});

describe('the list of error codes', () => {
  it('when a code is not in src/error-codes.ts, then the error body schema (and so /openapi.json) refuses it', () => {
    expect(errorBodySchema.safeParse(errorBody('not_found', 'x')).success).toBe(true);
    expect(
      errorBodySchema.safeParse({ error: { code: 'ctp_invalid_json_body', message: 'x' } }).success,
    ).toBe(false);
  });
});

/**
 * Never run: `npm run typecheck` fails if any of these compiles, so no code outside the list, or
 * with another status than the list gives it, can be thrown or answered.
 */
export function codesOutsideTheListDoNotCompile() {
  return [
    // @ts-expect-error: a framework code, not ours
    new DomainError('x', { status: 400, code: 'ctp_invalid_json_body' }),
    // @ts-expect-error: not_found is always a 404
    new DomainError('x', { status: 400, code: 'not_found' }),
    // @ts-expect-error: not a code of ours
    errorBody('fst_err_validation', 'x'),
  ];
}
