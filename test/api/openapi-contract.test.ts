import { get as httpGet } from 'node:http';
import { Validator } from '@seriousme/openapi-schema-validator';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { configDefaults, isLoopbackHost } from '../../src/config.js';
import { ServiceMetrics } from '../../src/api/plugins/metrics.js';
import { useTestApis, type TestApi, type TestApiOptions, type TestApiScope } from '../helpers/api.js';
import { feedbackParts } from '../helpers/feedback.js';

const KEY = 'a-long-enough-test-key-0123456789';

type Schema = { type?: string; properties?: Record<string, Schema> };
type Media = Record<string, { schema?: Schema }>;
interface Operation {
  tags?: string[];
  summary?: string;
  security?: Record<string, string[]>[];
  parameters?: { in: string; name: string }[];
  requestBody?: { content: Media };
  responses: Record<string, { description: string; content?: Media; headers?: Record<string, unknown> }>;
}
interface Spec {
  openapi: string;
  tags?: { name: string; description?: string }[];
  components?: { securitySchemes?: Record<string, Record<string, string>> };
  paths: Record<string, Record<string, Operation>>;
}
interface Op {
  method: string;
  /** As the document writes it: /jobs/{id} */
  path: string;
  op: Operation;
}

/** What the service sends without being asked for anything: the page, the docs and the document itself. */
const deliberatelyHidden = (path: string) =>
  path === '/' ||
  path === '*' ||
  path === '/*' ||
  path === '/openapi.json' ||
  path === '/docs' ||
  path.startsWith('/docs/');

/**
 * Every route the app serves, read from Fastify's own route tree (not from anything the OpenAPI
 * plugin collected), as `METHOD /path/{param}`; HEAD, which Fastify adds to every GET, left out.
 */
function registeredRoutes(app: TestApi['app']): string[] {
  const stack: string[] = [];
  const routes: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const at = line.search(/[├└]── /);
    if (at < 0) continue;
    const depth = at / 4;
    const [, segment, methods] = /^(.*?)(?: \(([A-Z, ]+)\))?$/.exec(line.slice(at + 4))!;
    const path = (stack[depth - 1] ?? '') + segment!;
    stack[depth] = path;
    stack.length = depth + 1;
    if (!methods || deliberatelyHidden(path)) continue;
    const documented = path.replace(/:(\w+)/g, '{$1}');
    for (const method of methods.split(', ').filter((m) => m !== 'HEAD'))
      routes.push(`${method} ${documented}`);
  }
  return routes;
}

const operations = (spec: Spec): Op[] =>
  Object.entries(spec.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, op })),
  );

/** Path parameters no route has: the probes below change nothing and create nothing. */
const NO_SUCH: Record<string, string> = {
  id: 'no-such-id',
  version: '999999',
  name: 'no-such-alias',
  index: '0',
  digit: '7',
};

const concrete = (path: string) =>
  path.replace(/\{(\w+)\}/g, (_, name: string) => {
    expect(NO_SUCH, `a value for {${name}} in ${path}`).toHaveProperty(name);
    return NO_SUCH[name]!;
  });

const mediaType = (type: string | undefined) => type?.split(';')[0]!.trim().toLowerCase();

/** A body of this content type that no route takes as valid: a JSON array, or bytes that are no image or archive. */
const invalidBody = (type: string) => (type === 'application/json' ? '[]' : Buffer.from('not a real file'));

/** A request with a method named at run time, to the operation's path made concrete. */
const call = (api: TestApi, method: string, path: string) =>
  request(api.app.server)[method.toLowerCase() as 'post'](concrete(path));

/**
 * The operation, called as a client would (the first content type it documents for a body),
 * with whatever headers are given: what the service really answers.
 */
function probe(api: TestApi, { method, path, op }: Op, headers: Record<string, string> = {}) {
  let req = call(api, method, path);
  for (const [name, value] of Object.entries(headers)) req = req.set(name, value);
  const type = op.requestBody && Object.keys(op.requestBody.content)[0]!;
  return type ? req.set('content-type', type).send(invalidBody(type)) : req;
}

/** The answer is one the operation documents, with a content type it documents for that status. */
function expectDocumented({ method, path, op }: Op, res: request.Response): void {
  const where = `${method} ${path} answered ${res.status}`;
  const documented = op.responses[String(res.status)];
  expect(documented, `${where}, which it does not document`).toBeDefined();
  if (res.status === 204) return;
  const types = Object.keys(documented!.content ?? {}).map(mediaType);
  expect(types, `${where} as ${res.headers['content-type']}`).toContain(
    mediaType(res.headers['content-type']),
  );
}

const isErrorBody = (schema: Schema | undefined) =>
  schema?.type === 'object' &&
  schema.properties?.error?.properties?.code?.type === 'string' &&
  schema.properties.error.properties.message?.type === 'string';

// Read once per API: /openapi.json counts against the rate limit like any other route.
const specs = new WeakMap<TestApi, Promise<Spec>>();
const fetchSpec = (api: TestApi): Promise<Spec> => {
  if (!specs.has(api))
    specs.set(
      api,
      request(api.app.server)
        .get('/openapi.json')
        .expect(200)
        .then((res) => res.body as Spec),
    );
  return specs.get(api)!;
};

/** The settings src/api/server.ts gives the app, from the configuration's defaults (and these changes). */
function appOptions(
  scope: TestApiScope,
  name: string,
  changes: { apiKey?: string; requireKey?: boolean; perMinute?: number; bodyLimits?: number },
): TestApiOptions {
  const { apiKey, requireKey = false, perMinute, bodyLimits } = changes;
  return {
    auth: {
      apiKey,
      protectPredict: requireKey,
      protectMetrics: requireKey,
      protectFeedback: requireKey,
      loopbackHostOnly: !apiKey && isLoopbackHost(configDefaults.HOST),
    },
    rateLimit: {
      redis: scope.redis,
      prefix: `${scope.prefix}:${name}`,
      perMinute: perMinute ?? configDefaults.RATE_LIMIT_PER_MINUTE,
      predictPerMinute: perMinute ?? configDefaults.PREDICT_RATE_LIMIT_PER_MINUTE,
      feedbackPerMinute: perMinute ?? configDefaults.FEEDBACK_RATE_LIMIT_PER_MINUTE,
    },
    ...(bodyLimits ? { bodyLimit: bodyLimits, predictBodyLimit: 2 * bodyLimits } : {}),
    metrics: new ServiceMetrics({}),
    feedback: feedbackParts(scope, `feedback-${name}`),
  };
}

describe('the OpenAPI document is the whole contract', () => {
  const scope = useTestApis('openapi-contract');
  const apis: Record<string, TestApi> = {};
  const configs = {
    'the default configuration': {},
    'API_KEY with PREDICT_, METRICS_ and FEEDBACK_REQUIRES_KEY': { apiKey: KEY, requireKey: true },
    'BODY_LIMIT_BYTES 2048 and PREDICT_BODY_LIMIT_BYTES 4096': { bodyLimits: 2048 },
    'every rate limit at one a minute': { perMinute: 1 },
  };
  const api = async (config: keyof typeof configs) =>
    (apis[config] ??= await scope.start(
      appOptions(scope, String(Object.keys(apis).length), configs[config]),
    ));

  describe.each(Object.keys(configs) as (keyof typeof configs)[])('with %s', (config) => {
    it('when /openapi.json is validated as OpenAPI, then it has no error', async () => {
      const spec = await fetchSpec(await api(config));
      const result = await new Validator().validate(spec as unknown as Record<string, unknown>);
      expect(result.errors).toBeUndefined();
      expect(result.valid).toBe(true);
      expect(spec.openapi).toMatch(/^3\./);
    });

    it('when the routes the service serves are listed, then each is in the document, and nothing else is', async () => {
      const served = await api(config);
      const documented = operations(await fetchSpec(served)).map(({ method, path }) => `${method} ${path}`);
      const registered = registeredRoutes(served.app);
      expect(registered).toEqual(
        expect.arrayContaining(['GET /metrics', 'POST /predict', 'GET /jobs/{id}/events']),
      );
      expect(documented.sort()).toEqual([...new Set(registered)].sort());
    });

    it('when each operation is read, then it has a described tag, a summary, and the error answers its inputs can bring', async () => {
      const spec = await fetchSpec(await api(config));
      const described = new Map((spec.tags ?? []).map((t) => [t.name, t.description]));
      for (const { method, path, op } of operations(spec)) {
        const where = `${method} ${path}`;
        expect(op.tags, where).toHaveLength(1);
        // Words, not just something: a tag's description and a summary (one word at least: 'Liveness').
        expect(described.get(op.tags![0]!), `${where}: tag ${op.tags![0]} described`).toMatch(/\w+ \w+/);
        expect(op.summary, where).toMatch(/[A-Za-z]{4,}/);
        const codes = Object.keys(op.responses);
        if (op.parameters?.length || op.requestBody) expect(codes, where).toContain('400');
        if (op.parameters?.some((p) => p.in === 'path')) expect(codes, where).toContain('404');
        if (op.requestBody) expect(codes, where).toEqual(expect.arrayContaining(['413', '415']));
        for (const [code, response] of Object.entries(op.responses)) {
          if (code.startsWith('2')) continue;
          expect(response.description, `${where} ${code}`).not.toBe('Default Response');
          if (code.startsWith('4'))
            expect(isErrorBody(response.content?.['application/json']?.schema), `${where} ${code}`).toBe(
              true,
            );
        }
      }
    });
  });

  describe.each([
    'the default configuration',
    'API_KEY with PREDICT_, METRICS_ and FEEDBACK_REQUIRES_KEY',
  ] as const)('with %s', (config) => {
    it('when every operation is called without a key, then exactly those documented with security and a 401 answer 401, and every answer is documented', async () => {
      const served = await api(config);
      const spec = await fetchSpec(served);
      const schemes = spec.components?.securitySchemes ?? {};
      expect(schemes.bearerKey).toMatchObject({ type: 'http', scheme: 'bearer' });
      expect(schemes.apiKeyHeader).toMatchObject({ type: 'apiKey', in: 'header', name: 'X-API-Key' });
      const keyed: string[] = [];
      for (const operation of operations(spec)) {
        const { method, path, op } = operation;
        const res = await probe(served, operation);
        expectDocumented(operation, res);
        const where = `${method} ${path}`;
        expect(op.security !== undefined, `${where} security, answered ${res.status}`).toBe(
          res.status === 401,
        );
        expect('401' in op.responses, `${where} 401`).toBe(res.status === 401);
        if (res.status !== 401) continue;
        keyed.push(where);
        expect(op.security).toEqual([{ bearerKey: [] }, { apiKeyHeader: [] }]);
        expect(op.responses['401']!.headers).toHaveProperty('WWW-Authenticate');
        // Either scheme the document offers gets past the check.
        for (const headers of [{ authorization: `Bearer ${KEY}` }, { 'x-api-key': KEY }] as Record<
          string,
          string
        >[]) {
          const keyedRes = await probe(served, operation, headers);
          expect(keyedRes.status, `${where} with ${Object.keys(headers)[0]}`).not.toBe(401);
          expectDocumented(operation, keyedRes);
        }
      }
      if (config === 'the default configuration') expect(keyed).toEqual([]);
      else
        expect(keyed.sort()).toEqual(
          [
            'POST /jobs',
            'DELETE /jobs/{id}',
            'POST /datasets',
            'DELETE /datasets/{id}',
            'DELETE /models/{version}',
            'PUT /models/aliases/{name}',
            'DELETE /models/aliases/{name}',
            'POST /predict',
            'POST /feedback',
            'DELETE /feedback/{id}',
            'GET /metrics',
          ].sort(),
        );
    });

    it('when every operation is addressed to another host name, then exactly those documenting forbidden_host answer it', async () => {
      const served = await api(config);
      const spec = await fetchSpec(served);
      const guarded: string[] = [];
      for (const operation of operations(spec)) {
        const { method, path, op } = operation;
        const res = await probe(served, operation, { host: 'rebound.example', 'x-api-key': KEY });
        expectDocumented(operation, res);
        const refused = res.status === 403 && res.body.error?.code === 'forbidden_host';
        expect(op.responses['403']?.description ?? '', `${method} ${path}`).toMatch(
          refused ? /forbidden_host/ : /^(?!.*forbidden_host)/,
        );
        if (refused) guarded.push(`${method} ${path}`);
      }
      // Without API_KEY on loopback, every state-changing route, POST /feedback among them.
      expect(guarded.length > 0).toBe(config === 'the default configuration');
    });

    it('when each body route gets every content type it documents, then none is refused as 415, and each type it does not document is', async () => {
      const served = await api(config);
      const withBodies = operations(await fetchSpec(served)).filter(({ op }) => op.requestBody);
      // Whatever some route takes, and types none does (text/plain among them: Fastify would parse
      // it into a string if the app kept its default parser).
      const candidates = new Set([
        ...withBodies.flatMap(({ op }) => Object.keys(op.requestBody!.content)),
        'application/xml',
        'application/x-www-form-urlencoded',
        'multipart/form-data',
        'text/plain',
      ]);
      expect(withBodies.map(({ method, path }) => `${method} ${path}`)).toEqual(
        expect.arrayContaining(['POST /predict', 'POST /feedback', 'POST /jobs', 'POST /datasets']),
      );
      for (const operation of withBodies) {
        const { method, path, op } = operation;
        const types = Object.keys(op.requestBody!.content);
        for (const type of types) {
          const res = await call(served, method, path)
            .set('x-api-key', KEY)
            .set('content-type', type)
            .send(invalidBody(type));
          expect(res.status, `${method} ${path} as ${type}`).not.toBe(415);
          expectDocumented(operation, res);
        }
        const refused = [...candidates].filter((t) => !types.includes(t));
        for (const type of refused) {
          const other = await call(served, method, path)
            .set('x-api-key', KEY)
            .set('content-type', type)
            .send(Buffer.from('not a digit'));
          expect(other.status, `${method} ${path} as ${type}`).toBe(415);
          expect(other.body.error.code).toBe('unsupported_media_type');
        }
        expect(op.responses['415']!.description).toContain(types.join(' or '));
      }
      const predict = withBodies.find((o) => o.path === '/predict')!.op.requestBody!.content;
      expect(Object.keys(predict)).toEqual(['application/json', 'image/png', 'image/jpeg']);
      expect(predict['image/png']!.schema).toEqual({ type: 'string', format: 'binary' });
      expect(predict['application/json']!.schema!.properties).toHaveProperty('images');
    });
  });

  it('with BODY_LIMIT_BYTES 2048: when a body one byte over the limit a route documents comes, then it answers 413', async () => {
    const served = await api('BODY_LIMIT_BYTES 2048 and PREDICT_BODY_LIMIT_BYTES 4096');
    const limits = operations(await fetchSpec(served)).flatMap((operation) => {
      const bytes = /over (\d+) bytes/.exec(operation.op.responses['413']?.description ?? '');
      return bytes ? [{ ...operation, limit: Number(bytes[1]) }] : [];
    });
    expect(limits.map(({ method, path, limit }) => `${method} ${path} ${limit}`)).toEqual(
      expect.arrayContaining(['POST /jobs 2048', 'POST /predict 4096', 'POST /feedback 4096']),
    );
    for (const { method, path, op, limit } of limits) {
      const under = await call(served, method, path)
        .set('content-type', 'application/json')
        .send(`[${' '.repeat(limit - 2)}]`);
      expect(under.status, `${method} ${path} at ${limit} bytes`).not.toBe(413);
      const over = await call(served, method, path)
        .set('content-type', 'application/json')
        .send(`[${' '.repeat(limit - 1)}]`);
      expect(over.status, `${method} ${path} at ${limit + 1} bytes`).toBe(413);
      expect(over.body.error.code).toBe('payload_too_large');
      expect(op.responses['413']!.description).toContain('payload_too_large');
    }
  });

  it('with every rate limit at one a minute: when every operation is called twice, then exactly those documenting 429 answer it', async () => {
    const served = await api('every rate limit at one a minute');
    for (const operation of operations(await fetchSpec(served))) {
      const { method, path, op } = operation;
      const answers = [await probe(served, operation), await probe(served, operation)];
      for (const res of answers) expectDocumented(operation, res);
      const limited = answers[1]!.status === 429;
      expect('429' in op.responses, `${method} ${path}: ${answers.map((r) => r.status).join(', ')}`).toBe(
        limited,
      );
      if (limited) {
        expect(answers[1]!.body.error.code).toBe('rate_limited');
        expect(op.responses['429']!.headers).toHaveProperty('Retry-After');
      }
    }
  });

  it('with the default configuration: when /metrics, a job event stream and a dataset picture are fetched, then each comes as the type documented', async () => {
    const served = await api('the default configuration');
    const spec = await fetchSpec(served);
    const documentedTypes = (path: string) => Object.keys(spec.paths[path]!.get!.responses['200']!.content!);

    const metrics = await request(served.app.server).get('/metrics').expect(200);
    expect(documentedTypes('/metrics')).toEqual([metrics.headers['content-type']]);
    expect(metrics.text).toContain('http_request_duration_seconds');

    const samples = await request(served.app.server).get('/datasets/mnist/samples.png').expect(200);
    expect(documentedTypes('/datasets/{id}/samples.png')).toEqual([
      mediaType(samples.headers['content-type']),
    ]);

    const job = await request(served.app.server)
      .post('/jobs')
      .send({ epochs: 1, trainSize: 100 })
      .expect(202);
    try {
      const port = await served.listen();
      const streamType = await new Promise<string | undefined>((resolve, reject) => {
        const req = httpGet({ port, host: '127.0.0.1', path: `/jobs/${job.body.id}/events` }, (res) => {
          resolve(res.headers['content-type']);
          req.destroy();
        });
        req.on('error', reject);
      });
      expect(documentedTypes('/jobs/{id}/events')).toEqual([mediaType(streamType)]);
    } finally {
      await request(served.app.server).delete(`/jobs/${job.body.id}`).expect(202);
    }
  });
});
