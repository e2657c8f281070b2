import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { useTestApi } from '../helpers/api.js';
import { sendRaw } from '../helpers/raw-http.js';

describe('errors Fastify answers before any route', () => {
  const api = useTestApi('framework', {}, { listen: true });

  it('when a URL does not decode, then 400 in the documented error shape', async () => {
    const res = await request(api.app.server).get('/jobs/%E0%A4%A').expect(400);
    expect(res.body.error.code).toBe('bad_request');
    expect(typeof res.body.error.message).toBe('string');
  });

  it('when a job id is 128 characters (the longest allowed), then it is looked up: 404, not 414', async () => {
    const res = await request(api.app.server)
      .get(`/jobs/${'a'.repeat(128)}`)
      .expect(404);
    expect(res.body.error.message).toContain('not found');
  });

  it('when the request is not HTTP at all, then 400 in the documented error shape, and the connection closes', async () => {
    const { text: answer } = await sendRaw(api.port, 'HELLO THERE\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    expect(body).toEqual({ error: { code: 'bad_request', message: 'the request is not valid HTTP' } });
  });

  it('when the headers are over the size limit, then 431 in the documented error shape', async () => {
    const { text: answer } = await sendRaw(
      api.port,
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).error.code).toBe('headers_too_large');
  });
});
