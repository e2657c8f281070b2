import Fastify from 'fastify';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { authPlugin } from '../../src/api/plugins/auth.js';
import { ServiceMetrics } from '../../src/api/plugins/metrics.js';
import { useTestApi, type TestApi } from '../helpers/api.js';
import { feedbackParts } from '../helpers/feedback.js';
import { pathVariants, stateChangingRoutes } from '../helpers/path-variants.js';
import { sendRaw } from '../helpers/raw-http.js';

const KEY = 'a-long-enough-test-key-0123456789';

/** Every state-changing operation /openapi.json documents, with its path made concrete. */
async function mutatingRoutes(api: TestApi): Promise<{ method: string; path: string }[]> {
  const spec = (await request(api.app.server).get('/openapi.json').expect(200)).body;
  return stateChangingRoutes(spec, { id: 'no-such-job', version: '999', name: 'staging' });
}

/** A request with a method named at run time. */
const send = (api: TestApi, method: string, path: string) =>
  request(api.app.server)[method.toLowerCase() as 'post'](path);

describe('API key, security headers and CORS', () => {
  const api = useTestApi('auth', (scope) => ({
    auth: { apiKey: KEY, protectPredict: true, protectFeedback: true },
    corsOrigins: ['https://app.example'],
    feedback: feedbackParts(scope),
  }));

  const protectedRoutes = [
    ['post', '/jobs', { epochs: 1 }],
    ['delete', '/jobs/some-id', undefined],
    ['put', '/models/aliases/production', { version: 1 }],
    ['delete', '/models/aliases/production', undefined],
    ['delete', '/models/1', undefined],
    ['post', '/predict', { image: new Array(784).fill(0) }],
    ['post', '/feedback', { image: new Array(784).fill(0), label: 1 }],
    ['delete', `/feedback/${'0'.repeat(20)}`, undefined],
  ] as const;

  it.each(protectedRoutes)(
    'when %s %s comes without a key, then it answers 401 saying how to send one',
    async (method, path, body) => {
      const res = await request(api.app.server)[method](path).send(body);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(res.body.error.message).toContain('Authorization: Bearer');
    },
  );

  it.each(protectedRoutes)(
    'when %s %s comes with a wrong key, then it answers 401',
    async (method, path, body) => {
      const res = await request(api.app.server)[method](path).set('x-api-key', 'wrong-key').send(body);
      expect(res.status).toBe(401);
      expect(res.body.error.message).toBe('the API key is not valid');
    },
  );

  it('when the right key comes as a bearer token or as X-API-Key, then the request goes through', async () => {
    const bearer = await request(api.app.server)
      .post('/jobs')
      .set('authorization', `Bearer ${KEY}`)
      .send({ epochs: 1, trainSize: 100 });
    expect(bearer.status).toBe(202);
    const header = await request(api.app.server).delete(`/jobs/${bearer.body.id}`).set('x-api-key', KEY);
    expect(header.status).toBe(202);
    const predict = await request(api.app.server)
      .post('/predict')
      .set('x-api-key', KEY)
      .send({ image: new Array(784).fill(0) });
    expect(predict.status).toBe(503); // past auth: no model yet
  });

  it('when every state-changing route in the OpenAPI document is called without the key, then each answers 401', async () => {
    const routes = await mutatingRoutes(api);
    expect(routes.map((r) => `${r.method} ${r.path}`)).toEqual(
      expect.arrayContaining([
        'POST /jobs',
        'DELETE /models/999',
        'PUT /models/aliases/staging',
        'POST /predict',
        'POST /feedback',
        'DELETE /feedback/no-such-job',
      ]),
    );
    const statuses = await Promise.all(
      routes.map(async ({ method, path }) => {
        const res = await send(api, method, path).send({ version: 1 });
        return `${method} ${path}: ${res.status}`;
      }),
    );
    expect(statuses).toEqual(routes.map(({ method, path }) => `${method} ${path}: 401`));
  });

  it(
    'when a protected route is written encoded, in absolute form, with doubled or trailing slashes, dot segments or a fragment, then no variant reaches its handler without the key',
    { timeout: 120_000 },
    async () => {
      const port = await api.listen();
      const reached: string[] = [];
      let sent = 0;
      for (const { method, path } of await mutatingRoutes(api)) {
        for (const variant of pathVariants(path)) {
          const body = Buffer.from(JSON.stringify({ epochs: 1, trainSize: 100, version: 1 }));
          const answer = await sendRaw(port, {
            method,
            path: variant.target,
            headers: { 'content-type': 'application/json' },
            body,
          });
          sent++;
          // 401: stopped before the handler. 404 from the not-found handler: no route matched.
          const unrouted = answer.status === 404 && answer.body.includes('no route for');
          if (answer.status !== 401 && !unrouted)
            reached.push(
              `${method} ${variant.target} (${variant.kind}): ${answer.status} ${answer.body.slice(0, 80)}`,
            );
        }
      }
      expect(sent).toBeGreaterThan(100);
      expect(reached).toEqual([]);
    },
  );

  it('when no route matches, then the answer is 404 whatever the method, with no key asked for', async () => {
    for (const method of ['POST', 'PUT', 'DELETE'])
      expect((await send(api, method, '/nowhere').send({})).status, method).toBe(404);
  });

  it('when reading, then no key is needed', async () => {
    await request(api.app.server).get('/jobs').expect(200);
    await request(api.app.server).get('/models').expect(200);
    await request(api.app.server).get('/healthz').expect(200);
  });

  it('when any route answers, then security headers are set; CORS allows only the configured origin', async () => {
    const res = await request(api.app.server).get('/healthz').set('origin', 'https://app.example');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBeDefined();
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example');
    const other = await request(api.app.server).get('/healthz').set('origin', 'https://evil.example');
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('routes declare their protection', () => {
  it('when a state-changing route declares no config.auth, then the app does not start', async () => {
    const app = Fastify();
    await app.register(authPlugin, {});
    app.get('/open', async () => 'fine');
    expect(() => app.post('/forgotten', async () => 'oops')).toThrow(
      'route POST /forgotten must declare config.auth',
    );
    app.post('/declared', { config: { auth: 'admin' } }, async () => 'fine');
    await app.ready();
    await app.close();
  });
});

describe('without an API key, on loopback (DNS rebinding)', () => {
  const api = useTestApi('auth-host', { auth: { loopbackHostOnly: true } });

  it('when a state-changing route is called with a Host that is not this machine, then 403 saying why', async () => {
    for (const { method, path } of await mutatingRoutes(api)) {
      const res = await send(api, method, path)
        .set('host', 'rebound.example:3000')
        .send(path === '/predict' ? { image: new Array(784).fill(0) } : { version: 1 });
      // /predict changes nothing: it stays open to any Host.
      if (path === '/predict') expect(res.status, 'POST /predict').toBe(503);
      else {
        expect(res.status, `${method} ${path}`).toBe(403);
        expect(res.body.error.code).toBe('forbidden_host');
        expect(res.body.error.message).toContain('"rebound.example:3000" is not this machine');
      }
    }
  });

  it.each(['localhost:3000', '127.0.0.1', '[::1]:8080', 'LOCALHOST'])(
    'when the Host is %s, then state-changing routes work without a key',
    async (host) => {
      const res = await request(api.app.server).delete('/models/aliases/staging').set('host', host);
      expect(res.status).toBe(404); // past the check: there is no such alias
    },
  );

  it('when reading with a foreign Host, then it is answered', async () => {
    await request(api.app.server).get('/jobs').set('host', 'rebound.example').expect(200);
  });
});

describe('METRICS_REQUIRES_KEY', () => {
  const api = useTestApi('auth-metrics', {
    auth: { apiKey: KEY, protectMetrics: true },
    metrics: new ServiceMetrics({}),
  });

  it('when /metrics is asked for without the key, then 401; with it, the metrics', async () => {
    await request(api.app.server).get('/metrics').expect(401);
    await request(api.app.server).head('/metrics').expect(401);
    await request(api.app.server).get('/%6Detrics').expect(401);
    const res = await request(api.app.server).get('/metrics').set('x-api-key', KEY).expect(200);
    expect(res.text).toContain('http_request_duration_seconds');
    // The probes stay open for load balancers.
    await request(api.app.server).get('/readyz').expect(200);
  });
});
