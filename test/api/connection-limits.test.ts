import http from 'node:http';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ConnectionLimits } from '../../src/api/connection-limits.js';
import { ImageDecoder } from '../../src/api/image-decoder.js';
import { useTestApi, useTestApis, type TestApi } from '../helpers/api.js';
import { bodyOf, openRaw, statusOf } from '../helpers/raw-http.js';
import { twoColourPng } from '../helpers/two-colour-png.js';

/** Generous: a safety net for a broken server, never what a passing test waits for. */
const DEADLINE_MS = 20_000;

describe('slow and idle connections', () => {
  const apis = useTestApis('connections');

  async function listening(
    limits: ConnectionLimits,
    imageDecoder?: ImageDecoder,
  ): Promise<{ api: TestApi; port: number }> {
    const api = await apis.start({ connectionLimits: limits, ...(imageDecoder ? { imageDecoder } : {}) });
    return { api, port: await api.listen() };
  }

  const quick: ConnectionLimits = {
    requestTimeoutMs: 600,
    headersTimeoutMs: 300,
    idleTimeoutMs: 60_000,
    maxConnections: 100,
  };

  it(
    'when a client sends part of a body and then nothing, then it gets 408 once HTTP_REQUEST_TIMEOUT_MS is over',
    { timeout: DEADLINE_MS },
    async () => {
      const { port } = await listening(quick);
      const trickler = openRaw(
        port,
        'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"image":',
      );
      const answer = await trickler.closed;
      expect(statusOf(answer)).toBe(408);
      expect(bodyOf(answer)).toEqual({
        error: { code: 'request_timeout', message: 'the request was not received in time' },
      });
    },
  );

  it(
    'when a client sends part of its headers and then nothing, then it gets 408 once HTTP_HEADERS_TIMEOUT_MS is over',
    { timeout: DEADLINE_MS },
    async () => {
      const { api, port } = await listening(quick);
      const trickler = openRaw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
      expect(statusOf(await trickler.closed)).toBe(408);
      // Others are served all along.
      await request(api.app.server).get('/healthz').expect(200);
    },
  );

  it(
    'when a request is under way and its connection goes quiet both ways, then it is closed after HTTP_IDLE_TIMEOUT_MS',
    { timeout: DEADLINE_MS },
    async () => {
      // The only slot for large images is taken, so the request waits for its answer with nothing moving.
      const decoder = new ImageDecoder({ concurrency: 1, maxWaiting: 1 });
      let release: (() => void) | undefined;
      const holding = decoder.slots.run(() => new Promise<void>((resolve) => (release = resolve)));
      try {
        const { port } = await listening({ ...quick, idleTimeoutMs: 1000 }, decoder);
        const png = await twoColourPng(1024, 1024);
        const quiet = openRaw(
          port,
          `POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${png.length}\r\n\r\n`,
        );
        quiet.socket.write(png);
        expect(await quiet.closed).toBe('');
        await vi.waitFor(() => expect(decoder.slots.waiting).toBe(1), { timeout: DEADLINE_MS });
      } finally {
        // Closing the API waits for requests in flight: free the slot even when an assertion failed.
        release?.();
        await holding;
      }
    },
  );

  it(
    'when HTTP_MAX_CONNECTIONS are open, then one more is closed unanswered, and taken again once one closes',
    { timeout: DEADLINE_MS },
    async () => {
      const { api, port } = await listening({
        ...quick,
        headersTimeoutMs: 60_000,
        requestTimeoutMs: 60_000,
        maxConnections: 3,
      });
      const holders = [0, 1, 2].map(() => openRaw(port, ''));
      await vi.waitFor(() => expect(connections(api.app.server)).resolves.toBe(3), { timeout: DEADLINE_MS });
      const refused = openRaw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      expect(await refused.closed).toBe('');
      holders[0]!.socket.destroy();
      await vi.waitFor(() => expect(connections(api.app.server)).resolves.toBe(2), { timeout: DEADLINE_MS });
      const taken = openRaw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      expect(statusOf(await taken.closed)).toBe(200);
      for (const holder of holders) holder.socket.destroy();
    },
  );
});

function connections(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );
}

describe('job event streams', () => {
  const api = useTestApi('streams', { eventStreams: { perClient: 2, total: 3 } }, { listen: true });
  let jobId: string;
  const open: http.ClientRequest[] = [];

  /** Opens GET /jobs/:id/events from `localAddress`; resolves with the status once headers arrive. */
  function openStream(localAddress: string): Promise<{ status: number; body: Promise<string> }> {
    return new Promise((resolve, reject) => {
      const req = http.get(
        { host: '127.0.0.1', port: api.port, localAddress, path: `/jobs/${jobId}/events` },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          const body = new Promise<string>((done) => res.on('end', () => done(text)));
          resolve({ status: res.statusCode!, body });
        },
      );
      req.on('error', reject);
      open.push(req);
    });
  }

  beforeAll(async () => {
    // No worker runs here: the job waits, so its streams stay open.
    const created = await request(api.app.server)
      .post('/jobs')
      .send({ epochs: 1, trainSize: 100, validationSize: 0 })
      .expect(202);
    jobId = created.body.id;
  });
  afterAll(() => {
    for (const req of open) req.destroy();
  });

  it('when a client has EVENT_STREAMS_PER_CLIENT open, then its next one gets 429 while another is served, and past EVENT_STREAMS_MAX everyone gets 429 until one closes', async () => {
    const mine = await Promise.all([openStream('127.0.0.1'), openStream('127.0.0.1')]);
    expect(mine.map((s) => s.status)).toEqual([200, 200]);
    const third = await openStream('127.0.0.1');
    expect(third.status).toBe(429);
    expect(JSON.parse(await third.body).error).toEqual({
      code: 'too_many_streams',
      message:
        'this client has 2 job event streams open, the most allowed per client (EVENT_STREAMS_PER_CLIENT); close one first',
    });
    expect((await openStream('127.0.0.2')).status).toBe(200);

    // Now EVENT_STREAMS_MAX (3) are open: any client gets 429, until one closes.
    const refused = await openStream('127.0.0.3');
    expect(refused.status).toBe(429);
    expect(JSON.parse(await refused.body).error.message).toMatch(
      /^this server has 3 job event streams open, the most it allows \(EVENT_STREAMS_MAX\)/,
    );
    open[0]!.destroy();
    await vi.waitFor(
      async () => {
        const again = await openStream('127.0.0.3');
        expect(again.status).toBe(200);
      },
      { timeout: DEADLINE_MS, interval: 50 },
    );
  });
});
