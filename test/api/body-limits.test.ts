import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { useTestApi } from '../helpers/api.js';
import { sendRaw } from '../helpers/raw-http.js';

/**
 * Sends a request whose body is far over the limit, all of it, as a client that does not read
 * while it sends does; then reads what came back. A write error (reset, broken pipe) is what a
 * client sees when the server closes on it with the body still coming.
 */
const uploadAll = (port: number, path: string, contentType: string, size: number) =>
  sendRaw(
    port,
    { method: 'POST', path, headers: { 'content-type': contentType }, body: Buffer.alloc(size, 0x30) },
    { readWhileSending: false },
  );

describe('body limits from the configuration', () => {
  const api = useTestApi('limits', { bodyLimit: 1024, predictBodyLimit: 4096 }, { listen: true });

  it('when a job body is over BODY_LIMIT_BYTES, then 413 and no job', async () => {
    const res = await request(api.app.server)
      .post('/jobs')
      .send({ epochs: 1, padding: 'x'.repeat(2000) })
      .expect(413);
    expect(res.body.error.code).toBe('payload_too_large');
    expect((await api.jobs.list({ limit: 10, offset: 0 })).jobs).toEqual([]);
  });

  it('when a /predict body is over PREDICT_BODY_LIMIT_BYTES, as JSON or as raw PNG bytes, then 413', async () => {
    await request(api.app.server)
      .post('/predict')
      .send({ images: [new Array(784).fill(0.5), new Array(784).fill(0.5)] })
      .expect(413);
    await request(api.app.server)
      .post('/predict')
      .set('content-type', 'image/png')
      .send(Buffer.alloc(5000))
      .expect(413);
  });

  it('when a /predict body is under its own limit but over the general one, then it is read (503: no model yet)', async () => {
    await request(api.app.server)
      .post('/predict')
      .send({ image: new Array(784).fill(0) })
      .expect(503);
  });

  it('when a client sends all of a body far over the limit before it reads, then it gets the 413, not a reset', async () => {
    const uploads = [
      ['/predict', 'application/json'],
      ['/predict', 'image/png'],
      ['/jobs', 'application/json'],
    ].flatMap(([path, type]) =>
      Array.from({ length: 3 }, () => uploadAll(api.port, path!, type!, 8 * 1024 * 1024)),
    );
    const results = await Promise.all(uploads);
    for (const { text: answer, error } of results) {
      expect(error).toBeUndefined();
      expect(answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).error.code).toBe('payload_too_large');
    }
  });
});
