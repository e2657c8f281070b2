import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ServiceMetrics } from '../../src/api/plugins/metrics.js';
import { useTestApi } from '../helpers/api.js';
import { logInto } from '../helpers/logs.js';
import { until } from '../helpers/until.js';

interface LogLine {
  level: number;
  msg: string;
  reqId?: string;
  req?: { method: string; url: string };
  res?: { statusCode: number };
}

const DEBUG = 20;
const INFO = 30;
const KEY = 'request-logs-key-0123456789';

/** The lines of one request, once its 'request completed' line is in (Fastify writes it after the answer). */
function linesOf(lines: LogLine[], id: string): Promise<LogLine[]> {
  return until(`the log lines of request ${id}`, () => {
    const own = lines.filter((l) => l.reqId === id);
    return own.some((l) => l.msg === 'request completed') ? own : undefined;
  });
}

describe('request log lines at LOG_LEVEL=debug', () => {
  const lines: LogLine[] = [];
  let shuttingDown = false;
  const api = useTestApi('request-logs-debug', {
    logger: logInto(lines, 'debug'),
    metrics: new ServiceMetrics({}),
    auth: { apiKey: KEY, protectMetrics: true },
    shuttingDown: () => shuttingDown,
  });

  it.each([
    ['GET', '/healthz'],
    ['HEAD', '/healthz'],
    ['GET', '/readyz'],
    ['GET', '/metrics'],
  ])('when %s %s is polled and answers 2xx, then both its lines are at debug', async (method, url) => {
    const id = `poll-${method}-${url.slice(1)}`;
    const call = method === 'HEAD' ? request(api.app.server).head(url) : request(api.app.server).get(url);
    await call.set('x-request-id', id).set('x-api-key', KEY).expect(200);
    const own = await linesOf(lines, id);
    expect(own.map((l) => [l.msg, l.level])).toEqual([
      ['incoming request', DEBUG],
      ['request completed', DEBUG],
    ]);
  });

  it('when an ordinary route is called, then its lines are at info', async () => {
    await request(api.app.server).get('/models').set('x-request-id', 'ordinary').expect(200);
    const own = await linesOf(lines, 'ordinary');
    expect(own.map((l) => [l.msg, l.level])).toEqual([
      ['incoming request', INFO],
      ['request completed', INFO],
    ]);
  });

  it('when a poll is refused (401 on /metrics without the key), then its completion is at info, naming the URL', async () => {
    await request(api.app.server).get('/metrics').set('x-request-id', 'no-key').expect(401);
    const completed = (await linesOf(lines, 'no-key')).find((l) => l.msg === 'request completed');
    expect(completed).toMatchObject({ level: INFO, req: { url: '/metrics' }, res: { statusCode: 401 } });
  });

  it('when /readyz answers 503 (shutting down), then its completion is at info, naming the URL', async () => {
    shuttingDown = true;
    try {
      await request(api.app.server).get('/readyz').set('x-request-id', 'not-ready').expect(503);
    } finally {
      shuttingDown = false;
    }
    const completed = (await linesOf(lines, 'not-ready')).find((l) => l.msg === 'request completed');
    expect(completed).toMatchObject({ level: INFO, req: { url: '/readyz' }, res: { statusCode: 503 } });
  });
});

describe('request log lines at LOG_LEVEL=info', () => {
  const lines: LogLine[] = [];
  const api = useTestApi('request-logs-info', {
    logger: logInto(lines, 'info'),
    metrics: new ServiceMetrics({}),
  });

  it('when /healthz, /readyz and /metrics are polled, then they write no line while an ordinary route still does', async () => {
    for (const url of ['/healthz', '/readyz', '/metrics']) {
      await request(api.app.server).get(url).set('x-request-id', `poll${url}`).expect(200);
    }
    // Asked after the polls were answered: its last line comes after anything they would write.
    await request(api.app.server).get('/models').set('x-request-id', 'after-polls').expect(200);
    const own = await linesOf(lines, 'after-polls');
    expect(own.map((l) => l.msg)).toEqual(['incoming request', 'request completed']);
    expect(lines.filter((l) => l.reqId?.startsWith('poll/'))).toEqual([]);
  });
});
