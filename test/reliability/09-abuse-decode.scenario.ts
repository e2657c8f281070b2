import http from 'node:http';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRaw, statusOf } from '../helpers/raw-http.js';
import { twoColourPng } from '../helpers/two-colour-png.js';
import { sleep } from '../helpers/until.js';
import { call, postJob, testDigits, waitForJob, waitForServing } from './helpers/client.js';
import { Cluster, waitUntil, type ApiProcess } from './helpers/cluster.js';
import { figures, fmt } from './helpers/figures.js';
import { paced, quantile, sampleMax, type PacedResult } from './helpers/load.js';
import { inMode } from './helpers/mode.js';

const SCENARIO = '9 abuse: decode';
/** How long the flood clients keep starting requests, and how long the baseline is measured. */
const FLOOD_MS = inMode(10_000, 60_000);
const BASELINE_MS = inMode(5_000, 15_000);
const WARM_UP_MS = 2_000;
const FLOOD_CLIENTS = 4;
/** The most PNG/JPEG images a request may carry (PREDICT_MAX_ENCODED_IMAGES, default). */
const MAX_ENCODED = 16;
/** Ordinary traffic: single numeric images, drawings from the web page, and a health probe. */
const NUMERIC_PER_S = 50;
const CANVAS_PER_S = 2;
const PROBE_PER_S = 20;
/** Short timeouts and stream cap for this API, so the scenario sees them act within seconds. */
const REQUEST_TIMEOUT_MS = 5000;
const HEADERS_TIMEOUT_MS = 3000;
const STREAMS_PER_CLIENT = 10;
const STREAMS_MAX = 50;
const BODY_TRICKLERS = inMode(200, 500);
const HEADER_TRICKLERS = inMode(50, 100);
/** Tricklers connect over this long: as many clients would, not all in the same millisecond. */
const ARRIVAL_MS = REQUEST_TIMEOUT_MS;
/**
 * Bars: /healthz p99 and RSS from the issue; the p99s are timing bars (reported, enforced only
 * with RELIABILITY_BARS=enforce), RSS a verdict. Ordinary /predict p99 against the same traffic
 * unflooded in the same run, before and after the flood, the larger of the two (one 5 s window
 * is a noisy reference on a shared machine). At most twice it, or 100 ms more when it is small:
 * one of the 2 cores is meant to be busy decoding, and the event loop, the test's clients, Redis
 * and whatever else runs on the machine share the other. The unflooded p99 alone moved between
 * 13 and 76 ms from one window to the next here; before the fix, the flooded p99 was 11 s.
 */
const HEALTH_P99_MS = 100;
const RSS_LIMIT = 400 * 1024 * 1024;
/** Node looks for late requests once a second at most: a 408 comes within this of its timeout. */
const TIMEOUT_SLACK_MS = 2000;
/** A stream slot freed is taken again within this (a timing bar). */
const STREAM_AGAIN_MS = 5000;
const ordinaryBar = (referenceP99: number) => Math.max(2 * referenceP99, referenceP99 + 100);

interface Ordinary {
  numeric: PacedResult;
  canvas: PacedResult;
  health: PacedResult;
}

const ok = (r: PacedResult) => Object.entries(r.statuses).every(([status]) => status === '200');
const statuses = (r: PacedResult) =>
  Object.entries(r.statuses)
    .map(([status, n]) => `${fmt.int(n)} x ${status === '0' ? 'no answer' : status}`)
    .join(', ');
const p = (r: PacedResult, q: number) => fmt.ms(quantile(r.latencies, q));

describe(SCENARIO, () => {
  let cluster: Cluster;
  let api: ApiProcess;
  let numericBody: string;
  let canvasPng: Buffer;
  let baseline: Ordinary;
  let baselineRss = 0;
  let baselineLoop = { p99: 0, max: 0 };
  /** The unflooded /predict numeric p99: before the flood, then the larger of before and after. */
  let referenceP99 = 0;

  /** Ordinary traffic until `until()` says stop. */
  async function ordinary(until: () => boolean): Promise<Ordinary> {
    const post = (body: string | Buffer, type: string) => () => postBody(`${api.url}/predict`, body, type);
    const [numeric, canvas, health] = await Promise.all([
      paced(NUMERIC_PER_S, until, post(numericBody, 'application/json')),
      paced(CANVAS_PER_S, until, post(canvasPng, 'image/png')),
      paced(PROBE_PER_S, until, () => call(`${api.url}/healthz`).then((a) => a.status)),
    ]);
    return { numeric, canvas, health };
  }

  beforeAll(async () => {
    cluster = await Cluster.start('09-abuse-decode');
    api = await cluster.startApi({
      HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
      EVENT_STREAMS_PER_CLIENT: String(STREAMS_PER_CLIENT),
      EVENT_STREAMS_MAX: String(STREAMS_MAX),
    });
    const worker = cluster.startWorker();
    const job = await waitForJob(api.url, (await postJob(api.url)).id);
    await waitForServing(api.url, job.result!.modelVersion);
    // No worker from here on: its CPU would blur the figures, and jobs posted now stay waiting.
    await worker.kill();
    const digit = (await testDigits(1))[0]!;
    numericBody = JSON.stringify({ image: digit.image });
    canvasPng = await sharp(Buffer.from(digit.image.map((v) => Math.round((1 - v) * 255))), {
      raw: { width: 28, height: 28, channels: 1 },
    })
      .resize(280, 280)
      .png()
      .toBuffer();
    // Warm-up (JIT, the model's first calls), then the baseline of the same traffic, unflooded.
    await timed(WARM_UP_MS, ordinary);
    const rss = sampleMax(() => api.rss());
    await eventLoopDelay(api.url);
    baseline = await timed(BASELINE_MS, ordinary);
    baselineLoop = await eventLoopDelay(api.url);
    baselineRss = rss.stop();
    referenceP99 = quantile(baseline.numeric.latencies, 0.99);
  });
  afterAll(() => cluster?.close());

  it(`when ${FLOOD_CLIENTS} clients flood /predict with 8.5 KB 4096x4096 PNGs, then every request is refused or served, RSS stays under 400 MiB and ordinary traffic is served (its p99 and /healthz's against their bars)`, async ({
    task,
  }) => {
    const record = figures(task, SCENARIO);
    const png = (await twoColourPng(4096, 4096)).toString('base64');
    let flooding = true;
    const rss = sampleMax(() => api.rss());
    await eventLoopDelay(api.url);
    const traffic = ordinary(() => !flooding);
    const started = performance.now();

    // The issue's request, four at once: 64 copies each.
    const issueFlood = await Promise.all(
      Array.from({ length: FLOOD_CLIENTS }, () =>
        call<{ error: { code: string; message: string } }>(`${api.url}/predict`, {
          json: { images: new Array(64).fill(png) },
          timeoutMs: 120_000,
        }),
      ),
    );
    // Then as much as the limits let through: each client sends MAX_ENCODED copies, back to back.
    const floodAnswers: { status: number; ms: number }[] = [];
    const until = performance.now() + FLOOD_MS;
    await Promise.all(
      Array.from({ length: FLOOD_CLIENTS }, async () => {
        while (performance.now() < until) {
          const answer = await call(`${api.url}/predict`, {
            json: { images: new Array(MAX_ENCODED).fill(png) },
            timeoutMs: 300_000,
          }).catch(() => ({ status: 0, ms: 0 }));
          floodAnswers.push({ status: answer.status, ms: answer.ms });
        }
      }),
    );
    const floodMs = performance.now() - started;
    flooding = false;
    const during = await traffic;
    const loop = await eventLoopDelay(api.url);
    const rssMax = rss.stop();
    const afterwards = await timed(BASELINE_MS, ordinary);
    referenceP99 = Math.max(referenceP99, quantile(afterwards.numeric.latencies, 0.99));

    const decoded = floodAnswers.filter((a) => a.status === 200).length * MAX_ENCODED;
    const byStatus = floodAnswers.reduce<Record<number, number>>(
      (counts, a) => ({ ...counts, [a.status]: (counts[a.status] ?? 0) + 1 }),
      {},
    );
    const healthP99 = quantile(during.health.latencies, 0.99);
    const numericBar = ordinaryBar(referenceP99);
    const numericP99 = quantile(during.numeric.latencies, 0.99);

    record(
      `baseline, ${fmt.s(BASELINE_MS)} before the flood: /predict numeric ${NUMERIC_PER_S}/s p50 / p99; 280x280 PNG ${CANVAS_PER_S}/s p99; /healthz p99; RSS max`,
      `${p(baseline.numeric, 0.5)} / ${p(baseline.numeric, 0.99)}; ${p(baseline.canvas, 0.99)}; ${p(baseline.health, 0.99)}; ${fmt.mib(baselineRss)}`,
    );
    record(
      `the same, ${fmt.s(BASELINE_MS)} after the flood`,
      `${p(afterwards.numeric, 0.5)} / ${p(afterwards.numeric, 0.99)}; ${p(afterwards.canvas, 0.99)}; ${p(afterwards.health, 0.99)}`,
    );
    record(
      `${FLOOD_CLIENTS} requests at once, 64 copies each of the ${fmt.int(Buffer.from(png, 'base64').length)}-byte 4096x4096 PNG`,
      issueFlood
        .map((a) => `${a.status} ${(a.body as { error?: { code: string } }).error?.code} in ${fmt.ms(a.ms)}`)
        .join(', '),
      issueFlood.every((a) => a.status === 400),
    );
    record(
      `then ${FLOOD_CLIENTS} clients sending ${MAX_ENCODED} copies per request back to back for ${fmt.s(FLOOD_MS)}`,
      `${floodAnswers.length} requests (${Object.entries(byStatus)
        .map(([s, n]) => `${n} x ${s}`)
        .join(', ')}), ${fmt.int(decoded)} images decoded in ${fmt.s(floodMs)}; a request took ${fmt.s(
        Math.min(...floodAnswers.map((a) => a.ms)),
      )} to ${fmt.s(Math.max(...floodAnswers.map((a) => a.ms)))}`,
      floodAnswers.every((a) => a.status === 200 || a.status === 503),
    );
    record(
      'ordinary traffic during the flood: all 200 (numeric /predict, 280x280 PNG /predict, /healthz)',
      [during.numeric, during.canvas, during.health].map(statuses).join('; '),
      [during.numeric, during.canvas, during.health].every(ok),
    );
    record.bar(
      `/healthz during the flood (${PROBE_PER_S}/s): p50 / p99 / max (the bar on p99)`,
      `${p(during.health, 0.5)} / ${p(during.health, 0.99)} / ${p(during.health, 1)}`,
      healthP99,
      HEALTH_P99_MS,
    );
    record(
      "the API's event loop delay during the flood, p99 / max (its own monitor, from /metrics)",
      `${fmt.ms(loop.p99)} / ${fmt.ms(loop.max)} (baseline ${fmt.ms(baselineLoop.p99)} / ${fmt.ms(baselineLoop.max)})`,
    );
    record(
      `API RSS max during the flood (bar: < ${fmt.mib(RSS_LIMIT)})`,
      `${fmt.mib(rssMax)} (baseline ${fmt.mib(baselineRss)})`,
      rssMax < RSS_LIMIT,
    );
    record.bar(
      `/predict numeric ${NUMERIC_PER_S}/s during the flood: p50 / p99 (the bar on p99: max(2 x, + 100 ms) the unflooded p99)`,
      `${p(during.numeric, 0.5)} / ${p(during.numeric, 0.99)}; unflooded p99 ${fmt.ms(referenceP99)}`,
      numericP99,
      numericBar,
    );
    record(
      `/predict 280x280 PNG ${CANVAS_PER_S}/s during the flood: p50 / p99 / max (small images have a decode line of their own)`,
      `${p(during.canvas, 0.5)} / ${p(during.canvas, 0.99)} / ${p(during.canvas, 1)}`,
    );

    expect(issueFlood.map((a) => a.status)).toEqual(issueFlood.map(() => 400));
    expect(floodAnswers.filter((a) => a.status !== 200 && a.status !== 503)).toEqual([]);
    expect(rssMax).toBeLessThan(RSS_LIMIT);
    expect([during.numeric, during.canvas, during.health].every(ok)).toBe(true);
  });

  it(`when ${BODY_TRICKLERS} clients arriving over ${fmt.s(ARRIVAL_MS)} trickle bodies and ${HEADER_TRICKLERS} headers a byte a second, then every one gets 408 while ordinary requests are served`, async ({
    task,
  }) => {
    const record = figures(task, SCENARIO);
    const started = performance.now();
    // Node looks for late requests once a second and closes every one it finds at once, about
    // 0.4 ms each (plain Node the same): 500 arriving in the same millisecond stall the event loop
    // about 200 ms when they time out together. Spread over ARRIVAL_MS, about 100 go at a time.
    const at = (i: number, count: number) => (i * ARRIVAL_MS) / count;
    const tricklers = [
      ...Array.from({ length: BODY_TRICKLERS }, (_, i) =>
        trickle(
          api.port,
          'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n',
          'body',
          at(i, BODY_TRICKLERS),
        ),
      ),
      ...Array.from({ length: HEADER_TRICKLERS }, (_, i) =>
        trickle(api.port, 'POST /predict HTTP/1.1\r\nHost: x\r\nX-Slow: ', 'header', at(i, HEADER_TRICKLERS)),
      ),
    ];
    let open = true;
    const rss = sampleMax(() => api.rss());
    await eventLoopDelay(api.url);
    const traffic = ordinary(() => !open);
    const ends = await Promise.all(tricklers);
    open = false;
    const during = await traffic;
    const loop = await eventLoopDelay(api.url);
    const rssMax = rss.stop();

    const summary = (kind: 'body' | 'header', timeoutMs: number) => {
      const mine = ends.filter((e) => e.kind === kind);
      const cut = mine.filter((e) => e.status === 408);
      const slowest = Math.max(...mine.map((e) => e.ms));
      return { mine, cut, slowest, limit: timeoutMs + TIMEOUT_SLACK_MS };
    };
    const bodies = summary('body', REQUEST_TIMEOUT_MS);
    const headers = summary('header', HEADERS_TIMEOUT_MS);
    const numericBar = ordinaryBar(referenceP99);
    const numericP99 = quantile(during.numeric.latencies, 0.99);

    for (const [what, s] of [
      [`${BODY_TRICKLERS} bodies a byte a second`, bodies],
      [`${HEADER_TRICKLERS} header lines a byte a second`, headers],
    ] as const)
      record(`${what}: 408`, `${s.cut.length} of ${s.mine.length}`, s.cut.length === s.mine.length);
    record.bar(
      `the last 408 to a body, after connecting (HTTP_REQUEST_TIMEOUT_MS=${REQUEST_TIMEOUT_MS})`,
      fmt.ms(bodies.slowest),
      bodies.slowest,
      bodies.limit,
    );
    record.bar(
      `the last 408 to a header line, after connecting (HTTP_HEADERS_TIMEOUT_MS=${HEADERS_TIMEOUT_MS})`,
      fmt.ms(headers.slowest),
      headers.slowest,
      headers.limit,
    );
    record(
      'ordinary traffic meanwhile: all 200 (numeric /predict, 280x280 PNG /predict, /healthz)',
      [during.numeric, during.canvas, during.health].map(statuses).join('; '),
      [during.numeric, during.canvas, during.health].every(ok),
    );
    record.bar(
      `/predict numeric ${NUMERIC_PER_S}/s meanwhile: p50 / p99 (the bar on p99); 280x280 PNG p99; /healthz p99`,
      `${p(during.numeric, 0.5)} / ${p(during.numeric, 0.99)}; ${p(during.canvas, 0.99)}; ${p(during.health, 0.99)}`,
      numericP99,
      numericBar,
    );
    record(
      "API RSS max meanwhile; the API's event loop delay p99 / max",
      `${fmt.mib(rssMax)}; ${fmt.ms(loop.p99)} / ${fmt.ms(loop.max)} (${fmt.s(performance.now() - started)} in all)`,
    );

    expect(bodies.cut.length).toBe(bodies.mine.length);
    expect(headers.cut.length).toBe(headers.mine.length);
    expect([during.numeric, during.canvas, during.health].every(ok)).toBe(true);
  });

  it(`when clients open job event streams by the dozen, then 429 past ${STREAMS_PER_CLIENT} per client and ${STREAMS_MAX} in all, while ordinary requests are served`, async ({
    task,
  }) => {
    const record = figures(task, SCENARIO);
    const job = await postJob(api.url);
    let flooding = true;
    const traffic = ordinary(() => !flooding);
    const jobReads = paced(
      10,
      () => !flooding,
      () => call(`${api.url}/jobs/${job.id}`).then((a) => a.status),
    );
    // 8 client addresses, 12 streams each, one after another: 5 fill the total, 3 find it full.
    const clients = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 1}`);
    const opened: http.ClientRequest[] = [];
    const answers: { client: string; status: number; code?: string; message?: string }[] = [];
    for (const client of clients) {
      for (let i = 0; i < 12; i++) {
        const stream = await openStream(api.port, job.id, client);
        opened.push(stream.request);
        answers.push({ client, ...stream.answer });
      }
    }
    for (const request of opened) request.destroy();
    const closedAt = performance.now();
    const again = await waitUntil(
      'a stream to be taken again after the others closed',
      async () => {
        const stream = await openStream(api.port, job.id, '127.0.0.9');
        stream.request.destroy();
        return stream.answer.status === 200 ? performance.now() - closedAt : undefined;
      },
      30_000,
      20,
    );
    flooding = false;
    const [during, reads] = await Promise.all([traffic, jobReads]);

    const admitted = answers.filter((a) => a.status === 200);
    const perClient = answers.filter((a) => a.status === 429 && a.message?.includes('per client'));
    const total = answers.filter((a) => a.status === 429 && a.message?.includes('EVENT_STREAMS_MAX'));
    const expected = { admitted: STREAMS_MAX, perClient: 10, total: 36 };
    const counts = { admitted: admitted.length, perClient: perClient.length, total: total.length };
    record(
      `8 client addresses x 12 streams on a waiting job (EVENT_STREAMS_PER_CLIENT=${STREAMS_PER_CLIENT}, EVENT_STREAMS_MAX=${STREAMS_MAX})`,
      `${counts.admitted} open; 429 per client ${counts.perClient}, 429 server full ${counts.total}; other ${answers.length - counts.admitted - counts.perClient - counts.total}`,
      JSON.stringify(counts) === JSON.stringify(expected),
    );
    record.bar('after every stream closed, a new one is taken within', fmt.ms(again), again, STREAM_AGAIN_MS);
    record(
      `meanwhile: /predict numeric p99, GET /jobs/:id ${10}/s p99, /healthz p99`,
      `${p(during.numeric, 0.99)}, ${p(reads, 0.99)}, ${p(during.health, 0.99)}; ${statuses(during.numeric)}; job reads ${statuses(reads)}`,
      [during.numeric, during.canvas, during.health, reads].every(ok),
    );

    expect(counts).toEqual(expected);
    expect([during.numeric, during.canvas, during.health, reads].every(ok)).toBe(true);
  });
});

/**
 * The p99 and largest delay of the API's event loop, in ms, since the last call: prom-client's
 * monitor (perf_hooks.monitorEventLoopDelay) starts afresh each time /metrics is read.
 */
async function eventLoopDelay(url: string): Promise<{ p99: number; max: number }> {
  const text = (await call<string>(`${url}/metrics`)).body;
  const seconds = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return {
    p99: seconds('nodejs_eventloop_lag_p99_seconds') * 1000,
    max: seconds('nodejs_eventloop_lag_max_seconds') * 1000,
  };
}

/** Runs `load` until `ms` have passed. */
async function timed<T>(ms: number, load: (until: () => boolean) => Promise<T>): Promise<T> {
  const end = performance.now() + ms;
  return load(() => performance.now() >= end);
}

/** POSTs `body` as `type`; the status. */
async function postBody(url: string, body: string | Buffer, type: string): Promise<number> {
  const response = await fetch(url, {
    method: 'POST',
    body,
    headers: { 'content-type': type },
    signal: AbortSignal.timeout(60_000),
  });
  await response.arrayBuffer();
  return response.status;
}

/**
 * A client that connects after `startAfterMs`, sends `head` and then one byte a second (of a
 * body, or of a header line) until the server answers or closes; resolves with the status (null:
 * closed unanswered) and how long after connecting.
 */
async function trickle(
  port: number,
  head: string,
  kind: 'body' | 'header',
  startAfterMs: number,
): Promise<{ kind: 'body' | 'header'; status: number | null; ms: number }> {
  await sleep(startAfterMs);
  const started = performance.now();
  const client = openRaw(port, head);
  const timer = setInterval(() => client.socket.write(kind === 'body' ? ' ' : 'a'), 1000);
  const answer = await client.closed;
  clearInterval(timer);
  return { kind, status: statusOf(answer), ms: performance.now() - started };
}

/** Opens GET /jobs/:id/events from `localAddress`; the answer's status, and its error if refused. */
function openStream(
  port: number,
  jobId: string,
  localAddress: string,
): Promise<{ request: http.ClientRequest; answer: { status: number; code?: string; message?: string } }> {
  return new Promise((resolve, reject) => {
    const request = http.get(
      { host: '127.0.0.1', port, localAddress, path: `/jobs/${jobId}/events` },
      (res) => {
        if (res.statusCode === 200) {
          resolve({ request, answer: { status: 200 } });
          return;
        }
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => {
          const error = (JSON.parse(text) as { error: { code: string; message: string } }).error;
          resolve({ request, answer: { status: res.statusCode!, ...error } });
        });
      },
    );
    request.on('error', reject);
  });
}
