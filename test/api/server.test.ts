import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createDigitClient, expectData } from '../../clients/typescript/src/index.js';
import { trainAndPublish } from '../helpers/models.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { exited as exitOf, useApiProcess } from '../helpers/processes.js';
import { useRedisPrefix } from '../helpers/redis.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { sleep, until } from '../helpers/until.js';

const served = async (port: number) =>
  (await expectData(createDigitClient({ baseUrl: `http://127.0.0.1:${port}` }).GET('/models'))).serving;

describe('the API process', () => {
  const { prefix } = useRedisPrefix('server');
  const dir = useTempDir('server');
  const api = useApiProcess({ prefix, dir }, { MODEL_POLL_MS: '200', SHUTDOWN_DRAIN_MS: '3000' });

  it('when it starts, then it logs the TensorFlow.js backend it chose as JSON', () => {
    const line = api.output.split('\n').find((l) => l.includes('TensorFlow.js backend'));
    expect(JSON.parse(line!)).toMatchObject({ backend: 'wasm', msg: 'TensorFlow.js backend' });
  });

  it(
    'when a version appears in the store without an announcement, then the periodic check starts serving it',
    { timeout: 60_000 },
    async () => {
      expect(await served(api.port)).toBeNull();
      // Published straight into the store: no Redis message, as when Redis was away.
      (await trainAndPublish(new FileModelStore(join(dir, 'models')))).dispose();
      let serving: number | null = null;
      // MODEL_POLL_MS is 200: it turns up within a few polls; the test's timeout is the net.
      while (serving === null) {
        serving = await served(api.port);
        if (serving === null) await sleep(100);
      }
      expect(serving).toBe(1);
    },
  );

  it(
    'when a correction is posted, then it is stored under the store and the version served is measured on it in the background',
    { timeout: 60_000 },
    async () => {
      const image = Array.from({ length: 784 }, (_, i) => (i % 29 === 0 ? 200 : 0));
      const client = createDigitClient({ baseUrl: api.url });
      const posted = await client.POST('/feedback', {
        body: { image, scale: 'byte', label: 3, modelVersion: 1 },
      });
      expect(posted.response.status).toBe(201);
      const { id } = posted.data!;
      const file = await readFile(join(dir, 'feedback', `${id}.json`), 'utf8');
      expect(JSON.parse(file)).toMatchObject({ id, class: '3', modelVersion: 1 });
      const { revision } = await expectData(client.GET('/feedback'));
      // Measured in the background after the change: the figure turns up at that revision.
      const figure = await until('version 1 to be measured on the correction', async () => {
        const metadata = await expectData(
          client.GET('/models/{version}', { params: { path: { version: 1 } } }),
        );
        return metadata.feedback?.revision === revision ? metadata.feedback : undefined;
      });
      expect(figure.examples).toBe(1);
    },
  );

  it(
    'when sent SIGTERM under load, then it turns not-ready, answers every request it accepted, and exits cleanly',
    { timeout: 60_000 },
    async () => {
      const { url } = api;
      const body = JSON.stringify({ images: Array.from({ length: 16 }, () => new Array(784).fill(0)) });
      const statuses: number[] = [];
      let refused = 0;
      let stopped = false;
      const client = async () => {
        while (!stopped) {
          try {
            const res = await fetch(`${url}/predict`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body,
            });
            statuses.push(res.status);
            await res.arrayBuffer();
          } catch {
            // Refused or reset: the server no longer takes connections.
            refused++;
            stopped = true;
          }
        }
      };
      const clients = Array.from({ length: 8 }, client);
      // An event stream on a job that no worker takes: it would stay open for ever.
      const job = (await (
        await fetch(`${url}/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ epochs: 1 }),
        })
      ).json()) as { id: string };
      const stream = await fetch(`${url}/jobs/${job.id}/events`);
      const streamText = stream.text();
      // Under load: every client has had answers before the signal.
      while (statuses.length < 16) await sleep(20);
      const exited = exitOf(api.child);
      const answeredBefore = statuses.length;
      const logged = api.output.length;
      api.child.kill('SIGTERM');
      // Draining (SHUTDOWN_DRAIN_MS, from the moment it logs so): readiness says go away, while
      // requests are still served.
      while (!api.output.slice(logged).includes('stopping: not ready, still serving')) await sleep(10);
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ ready: false, shuttingDown: true });
      await Promise.all(clients);
      expect(await exited).toBe(0);
      expect(await streamText).toContain('event: state');

      expect(answeredBefore).toBeGreaterThan(0);
      expect(statuses.length).toBeGreaterThan(answeredBefore);
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      // Every request the server began (it logs each one) was answered, and the client saw each answer.
      const lines = api.output
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string; req?: { url: string }; reqId?: string });
      const began = new Set(
        lines.filter((l) => l.msg === 'incoming request' && l.req?.url === '/predict').map((l) => l.reqId),
      );
      const completed = new Set(lines.filter((l) => l.msg === 'request completed').map((l) => l.reqId));
      expect([...began].filter((id) => !completed.has(id))).toEqual([]);
      expect(statuses.length).toBe(began.size);
      expect(refused).toBeGreaterThan(0);
    },
  );
});
