import { afterAll, describe, expect, it } from 'vitest';
import { pathVariants, stateChangingRoutes, type PathVariant } from '../helpers/path-variants.js';
import { sendRaw, type RawAnswer } from '../helpers/raw-http.js';
import { call } from './helpers/client.js';
import { Cluster, type ApiProcess } from './helpers/cluster.js';
import { figures } from './helpers/figures.js';

const SCENARIO = '9 abuse: encoded paths';
const KEY = 'reliability-abuse-key-0123456789';
const PREDICT_RATE = 5;
const IMAGE = Buffer.from(JSON.stringify({ image: new Array(784).fill(0) }));
/** A body the route's handler would act on, were the request let through. */
const bodyFor = (path: string) =>
  path === '/predict'
    ? IMAGE
    : Buffer.from(JSON.stringify(path === '/jobs' ? { epochs: 1, trainSize: 100 } : { version: 1 }));

/** Every state-changing operation the API documents, with its path made concrete. */
async function mutatingRoutes(api: ApiProcess) {
  const spec = (await call<{ paths: Record<string, Record<string, unknown>> }>(`${api.url}/openapi.json`))
    .body;
  return stateChangingRoutes(spec, { id: 'no-such-job', version: '1', name: 'production' });
}

type Outcome = '401' | '403' | '429' | 'unrouted' | 'handler';
const tally = (): Record<Outcome, number> => ({ '401': 0, '403': 0, '429': 0, unrouted: 0, handler: 0 });

/** How an answer came about: stopped by auth or the Host check, limited, no route matched, or a handler ran. */
function outcome(answer: RawAnswer): Outcome {
  if (answer.status === 401) return '401';
  if (answer.status === 403) return '403';
  if (answer.status === 429) return '429';
  if (answer.status === 404 && answer.body.includes('no route for')) return 'unrouted';
  return 'handler';
}

function send(api: ApiProcess, method: string, variant: PathVariant, body: Buffer, headers = {}) {
  return sendRaw(api.port, {
    method,
    path: variant.target,
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
}

describe(SCENARIO, () => {
  let cluster: Cluster;
  afterAll(() => cluster?.close());

  it('when every state-changing route is written encoded, in absolute form, with dot segments, extra slashes or a fragment, then none reaches its handler without the key, and /predict keeps one bucket', async ({
    task,
  }) => {
    const record = figures(task, SCENARIO);
    cluster = await Cluster.start('09-abuse-paths');
    const api = await cluster.startApi({
      API_KEY: KEY,
      PREDICT_REQUIRES_KEY: 'true',
      // POST /feedback is open by default; with this it is one more route only the key opens.
      FEEDBACK_REQUIRES_KEY: 'true',
      PREDICT_RATE_LIMIT_PER_MINUTE: String(PREDICT_RATE),
    });
    const routes = await mutatingRoutes(api);

    // 1. Without the key: every variant of every state-changing route, /predict included.
    const counts = tally();
    const reached: string[] = [];
    let probes = 0;
    const spellings = routes.map((r) => pathVariants(r.path).length + 1);
    for (const route of routes) {
      for (const variant of [{ kind: 'as documented', target: route.path }, ...pathVariants(route.path)]) {
        const answer = await send(api, route.method, variant, bodyFor(route.path));
        probes++;
        const how = outcome(answer);
        counts[how]++;
        if (how === 'handler' || how === '429')
          reached.push(`${route.method} ${variant.target} (${variant.kind}): ${answer.status}`);
      }
    }
    const jobs = await call<{ total: number }>(`${api.url}/jobs?limit=1`);
    const aliases = await call<Record<string, number>>(`${api.url}/models/aliases`);
    const changed = jobs.body.total + Object.keys(aliases.body).length;

    // 2. With the key, /predict in every spelling: all that the router takes count in one bucket.
    const predict = tally();
    for (const variant of [{ kind: 'as documented', target: '/predict' }, ...pathVariants('/predict')]) {
      predict[outcome(await send(api, 'POST', variant, IMAGE, { 'x-api-key': KEY }))]++;
    }

    // 3. No key, on loopback: a page that rebinds its own name to 127.0.0.1 (DNS rebinding).
    const open = await cluster.startApi({});
    const rebound = tally();
    // /predict changes nothing and stays open to any Host.
    const adminRoutes = routes.filter((r) => r.path !== '/predict');
    for (const route of adminRoutes) {
      const variant = { kind: 'foreign Host', target: route.path };
      rebound[
        outcome(
          await send(open, route.method, variant, bodyFor(route.path), { host: 'rebound.example:3000' }),
        )
      ]++;
    }

    record(
      `the ${routes.length} state-changing routes from /openapi.json in ${Math.min(...spellings)}-${Math.max(...spellings)} spellings each, raw TCP, no key`,
      `${probes} probes: ${counts['401']} 401, ${counts.unrouted} 404 (no route), ${counts.handler + counts['429']} reached a handler`,
      counts.handler + counts['429'] === 0,
    );
    record('jobs created and aliases set by those probes', changed, changed === 0);
    record(
      `POST /predict in ${predict.handler + predict['429'] + predict.unrouted} spellings with the key, PREDICT_RATE_LIMIT_PER_MINUTE=${PREDICT_RATE}`,
      `${predict.handler} answered by the handler, ${predict['429']} 429, ${predict.unrouted} 404 (no route)`,
      predict.handler === PREDICT_RATE && predict.handler + predict['429'] + predict.unrouted > PREDICT_RATE,
    );
    record(
      `no API_KEY on 127.0.0.1: the ${adminRoutes.length} admin routes with Host rebound.example`,
      `${rebound['403']} of ${adminRoutes.length} 403`,
      rebound['403'] === adminRoutes.length,
    );

    expect(reached).toEqual([]);
    expect(changed).toBe(0);
    expect(predict.handler).toBe(PREDICT_RATE);
    expect(predict['401']).toBe(0);
    expect(rebound['403']).toBe(adminRoutes.length);
  });
});
