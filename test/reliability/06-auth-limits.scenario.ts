import { afterAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/jobs/job-schema.js';
import { call, waitForJob, type Answer } from './helpers/client.js';
import { Cluster } from './helpers/cluster.js';
import { figures, fmt } from './helpers/figures.js';

const SCENARIO = '6 auth and limits';
const KEY = 'reliability-suite-key-0123456789';
const RATE = 100;
const PREDICT_RATE = 40;
/** Body limits set for this API (BODY_LIMIT_BYTES, PREDICT_BODY_LIMIT_BYTES). */
const BODY_LIMIT = 64 * 1024;
const PREDICT_BODY_LIMIT = 1024 * 1024;
/** What a client might send instead of the key. */
const WRONG_CREDENTIALS: Record<string, Record<string, string>> = {
  'no key': {},
  'wrong bearer': { authorization: 'Bearer not-the-key-0123456789' },
  'wrong X-API-Key': { 'x-api-key': 'not-the-key-0123456789' },
  'key minus its last character': { authorization: `Bearer ${KEY.slice(0, -1)}` },
  'key in another scheme': { authorization: `Basic ${Buffer.from(`user:${KEY}`).toString('base64')}` },
  'key upper-cased': { 'x-api-key': KEY.toUpperCase() },
};
const MUTATING = new Set(['post', 'put', 'delete', 'patch']);

describe(SCENARIO, () => {
  let cluster: Cluster;
  afterAll(() => cluster?.close());

  it('when protected routes are called without the key, over the limits, or with a job that would train for hours, then 401, 429, 413 and a bound', async ({
    task,
  }) => {
    const record = figures(task, SCENARIO);
    cluster = await Cluster.start('06-auth-limits');
    const api = await cluster.startApi({
      API_KEY: KEY,
      PREDICT_REQUIRES_KEY: 'true',
      // POST /feedback is open by default; with this it is one more route only the key opens.
      FEEDBACK_REQUIRES_KEY: 'true',
      RATE_LIMIT_PER_MINUTE: String(RATE),
      PREDICT_RATE_LIMIT_PER_MINUTE: String(PREDICT_RATE),
      BODY_LIMIT_BYTES: String(BODY_LIMIT),
      PREDICT_BODY_LIMIT_BYTES: String(PREDICT_BODY_LIMIT),
    });
    const worker = cluster.startWorker();
    const withKey = { authorization: `Bearer ${KEY}` };

    // Every state-changing route the API documents, and /predict (PREDICT_REQUIRES_KEY).
    const spec = (await call<{ paths: Record<string, Record<string, unknown>> }>(`${api.url}/openapi.json`))
      .body;
    const routes = Object.entries(spec.paths)
      .flatMap(([path, ops]) =>
        Object.keys(ops)
          .filter((m) => MUTATING.has(m))
          .map((m) => ({ method: m.toUpperCase(), path })),
      )
      .map((r) => ({
        ...r,
        url: r.path.replace('{id}', 'no-such-job').replace('{version}', '999').replace('{name}', 'staging'),
      }));
    const unauthorized: string[] = [];
    let refused = 0;
    for (const route of routes) {
      for (const [name, headers] of Object.entries(WRONG_CREDENTIALS)) {
        const answer = await call<{ error?: { code: string } }>(`${api.url}${route.url}`, {
          method: route.method,
          json: { version: 1 },
          headers,
        });
        if (
          answer.status === 401 &&
          answer.body.error?.code === 'unauthorized' &&
          answer.headers.get('www-authenticate')
        )
          refused++;
        else unauthorized.push(`${route.method} ${route.path} (${name}): ${answer.status}`);
      }
    }
    // With the key, the same requests get past the check (and fail for their own reasons).
    const withKeyAnswers = await Promise.all(
      routes.map((route) =>
        call(`${api.url}${route.url}`, {
          method: route.method,
          json: { epochs: 0, version: 999 },
          headers: withKey,
        }).then((a) => `${route.method} ${route.path}: ${a.status}`),
      ),
    );
    const keyAccepted = withKeyAnswers.filter((a) => !a.endsWith(': 401')).length;

    // Bodies just over the configured limits, and just under them.
    const bigJob = await call<{ error: { code: string } }>(`${api.url}/jobs`, {
      json: { epochs: 1, pad: 'x'.repeat(BODY_LIMIT) },
      headers: withKey,
    });
    const bigPredict = await call<{ error: { code: string } }>(`${api.url}/predict`, {
      json: { image: 'A'.repeat(PREDICT_BODY_LIMIT) },
      headers: withKey,
    });
    const underLimits = await Promise.all([
      call(`${api.url}/jobs`, { json: { epochs: 0, pad: 'x'.repeat(BODY_LIMIT - 100) }, headers: withKey }),
      call(`${api.url}/predict`, { json: { image: 'A'.repeat(PREDICT_BODY_LIMIT - 100) }, headers: withKey }),
    ]);
    // Mass assignment: fields a client must not set are refused by name.
    const massAssigned = await call<{ error: { message: string } }>(`${api.url}/jobs`, {
      json: {
        epochs: 1,
        trainSize: 100,
        id: 'mine',
        state: 'completed',
        attempts: 0,
        result: { modelVersion: 1 },
      },
      headers: withKey,
    });

    // The most expensive job the schema allows: how long would it hold a worker?
    const hours = await call<JobView>(`${api.url}/jobs`, {
      json: { architecture: 'wide', augment: true, epochs: 100, validationSize: 0, batchSize: 1 },
      headers: withKey,
    });
    let eta: number | null = null;
    if (hours.status === 202) {
      const running = await waitForJob(
        api.url,
        hours.body.id,
        (v) => (v.progress?.batch ?? 0) >= 200,
        120_000,
        100,
      );
      eta = running.progress!.etaSeconds;
      await call(`${api.url}/jobs/${hours.body.id}`, { method: 'DELETE', headers: withKey });
      await waitForJob(api.url, hours.body.id, undefined, 60_000);
    }

    // Over the rate limit: the API's own bucket, then /predict's, while probes stay open.
    const overLimit = await untilLimited(() => call(`${api.url}/jobs?limit=1`));
    const probeWhileLimited = await call(`${api.url}/healthz`);
    const readyWhileLimited = await call(`${api.url}/readyz`);
    const predictOverLimit = await untilLimited(() =>
      call(`${api.url}/predict`, { json: { image: new Array(784).fill(0) }, headers: withKey }),
    );

    record(
      'state-changing routes (from /openapi.json) and /predict x 6 wrong credentials -> 401',
      `${refused} of ${routes.length * Object.keys(WRONG_CREDENTIALS).length} (${routes.map((r) => `${r.method} ${r.path}`).join(', ')})`,
      unauthorized.length === 0,
    );
    record(
      'the same with the key: past the check',
      `${keyAccepted} of ${routes.length}`,
      keyAccepted === routes.length,
    );
    record(
      `bodies over BODY_LIMIT_BYTES=${BODY_LIMIT} (POST /jobs) / PREDICT_BODY_LIMIT_BYTES=${PREDICT_BODY_LIMIT} (POST /predict)`,
      `${bigJob.status} ${bigJob.body.error?.code} / ${bigPredict.status} ${bigPredict.body.error?.code}; just under them: ${underLimits.map((a) => a.status).join(' / ')}`,
      bigJob.status === 413 && bigPredict.status === 413 && underLimits.every((a) => a.status === 400),
    );
    record(
      'POST /jobs with id, state, attempts, result (mass assignment)',
      `${massAssigned.status}: ${massAssigned.body.error?.message.slice(0, 80)}`,
      massAssigned.status === 400,
    );
    record(
      `GET /jobs over ${RATE}/min`,
      `${overLimit.limited?.status} with Retry-After ${overLimit.limited?.headers.get('retry-after')} s, once the minute's ${RATE} were used (${overLimit.allowed} of them in this loop)`,
      overLimit.limited?.status === 429 && Number(overLimit.limited.headers.get('retry-after')) > 0,
    );
    record(
      '/healthz and /readyz while limited',
      `${probeWhileLimited.status}, ${readyWhileLimited.status}`,
      probeWhileLimited.status === 200 && readyWhileLimited.status === 200,
    );
    record(
      `POST /predict over its own ${PREDICT_RATE}/min`,
      `${predictOverLimit.limited?.status} once its ${PREDICT_RATE} were used (${predictOverLimit.allowed} in this loop)`,
      predictOverLimit.limited?.status === 429,
    );
    // A bound would be a 400 at submission, or a job that cannot hold a worker for hours.
    const bounded = hours.status === 400 || (eta !== null && eta <= 3600);
    record(
      'wide, augment, 100 epochs x 60,000 images, batch 1',
      hours.status === 202
        ? `accepted (202); the worker's own estimate: ${fmt.int(eta! / 3600)} h of training (no configurable limit on work per job)`
        : `${hours.status}: ${JSON.stringify(hours.body).slice(0, 100)}`,
      bounded,
    );

    expect(unauthorized).toEqual([]);
    expect(keyAccepted).toBe(routes.length);
    expect([bigJob.status, bigPredict.status]).toEqual([413, 413]);
    expect(underLimits.map((a) => a.status)).toEqual([400, 400]);
    expect(massAssigned.status).toBe(400);
    expect(overLimit.limited?.status).toBe(429);
    expect(Number(overLimit.limited?.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(probeWhileLimited.status).toBe(200);
    expect(readyWhileLimited.status).toBe(200);
    expect(predictOverLimit.limited?.status).toBe(429);
    expect(bounded, 'a job that trains for hours must be refused or bounded by a configured limit').toBe(
      true,
    );
    await worker.kill();
  });
});

/** Calls until a 429 (or 1,000 calls): how many were answered before it, and the 429 itself. */
async function untilLimited(
  send: () => Promise<Answer>,
): Promise<{ allowed: number; limited: Answer | undefined }> {
  for (let allowed = 0; allowed < 1000; allowed++) {
    const answer = await send();
    if (answer.status === 429) return { allowed, limited: answer };
  }
  return { allowed: 1000, limited: undefined };
}
