import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Objects } from '../../src/store/s3-objects.js';
import { RequestFraming } from './http-request-framing.js';
import { S3FaultProxy, type SeenRequest } from './s3-fault-proxy.js';
import { S3_CREDENTIALS, S3Server } from './s3-server.js';
import { useTempDir } from './temp-dir.js';

const put = (key: string) => (r: SeenRequest) => r.method === 'PUT' && r.key === key;

describe('S3FaultProxy', () => {
  const dir = useTempDir('s3-fault-proxy');
  let server: S3Server;
  let proxy: S3FaultProxy;
  /** Through the proxy. */
  let objects: S3Objects;
  /** Straight to the server: what is really stored. */
  let direct: S3Objects;

  beforeAll(async () => {
    server = await S3Server.start(`${dir}/s3`);
    proxy = await S3FaultProxy.start(server.endpoint, server.bucket);
    const location = server.location('proxy-test/', `${dir}/cache`);
    objects = S3Objects.open({ ...location, endpoint: proxy.endpoint }, { credentials: S3_CREDENTIALS });
    direct = S3Objects.open(location, { credentials: S3_CREDENTIALS });
  });
  afterAll(async () => {
    objects?.close();
    direct?.close();
    await proxy?.close();
    await server?.stop();
  });

  it('when nothing is trapped, then objects go through whole and every request is seen with its key', async () => {
    const body = Buffer.alloc(300_000, 7);
    await objects.put('a/b c.bin', body);
    expect(await objects.get('a/b c.bin')).toEqual(body);
    expect(await objects.children('a/')).toEqual(['b c.bin']);
    const seen = proxy.requests.map((r) => `${r.method} ${r.key ?? '(bucket)'}`);
    expect(seen).toEqual(
      expect.arrayContaining(['PUT proxy-test/a/b c.bin', 'GET proxy-test/a/b c.bin', 'GET (bucket)']),
    );
  });

  it('when a multipart upload goes through, then the requests after it are still read right', async () => {
    const file = `${dir}/big.bin`;
    const { writeFile } = await import('node:fs/promises');
    // Over lib-storage's part size (8 MiB): an upload in parts, each a body of its own.
    await writeFile(file, Buffer.alloc(9 * 1024 * 1024, 1));
    const after = proxy.trap(put('proxy-test/after-big'), { at: 'answer', then: 'hold' });
    await objects.upload('big', file);
    expect((await direct.list('big')).map((o) => o.size)).toEqual([9 * 1024 * 1024]);
    const parts = proxy.requests.filter((r) => r.key === 'proxy-test/big' && /partNumber=/.test(r.query));
    expect(parts.length).toBe(2);
    const held = objects.put('after-big', 'x');
    held.catch(() => undefined);
    expect((await after).request.key).toBe('proxy-test/after-big');
    // The server has it; its client is still waiting for the answer.
    expect((await direct.get('after-big'))?.toString()).toBe('x');
    expect(
      await Promise.race([held.then(() => 'answered'), objects.get('a/b c.bin').then(() => 'pending')]),
    ).toBe('pending');
  });

  it('when a trap cuts at a request, then that request never reaches the server, every request fails until restore(), and then all work again', async () => {
    const sprung = proxy.trap(put('proxy-test/claims/1'));
    const claim = objects.put('claims/1', '1');
    expect((await sprung).request.key).toBe('proxy-test/claims/1');
    expect(proxy.isCut).toBe(true);
    await expect(claim).rejects.toThrow();
    await expect(objects.get('a/b c.bin')).rejects.toThrow();
    await expect(objects.probe()).rejects.toThrow();
    const outage = proxy.restore();
    expect(outage.refusedConnections).toBeGreaterThan(0);
    expect(outage.ms).toBeGreaterThanOrEqual(0);
    expect(await direct.get('claims/1')).toBeNull();
    await objects.probe();
    expect(await objects.put('claims/1', '1')).toBe(true);
    expect((await direct.get('claims/1'))?.toString()).toBe('1');
  });

  it('when a trap cuts at an answer, then the server has done the request but its client never hears', async () => {
    const sprung = proxy.trap(put('proxy-test/marker'), { at: 'answer' });
    const marker = objects.put('marker', 'done');
    await sprung;
    await expect(marker).rejects.toThrow();
    proxy.restore();
    expect((await direct.get('marker'))?.toString()).toBe('done');
  });
});

describe('RequestFraming', () => {
  const requests = Buffer.from(
    'PUT /b/k1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello' +
      'PUT /b/k2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n' +
      'GET /b/k3 HTTP/1.1\r\nHost: x\r\n\r\n',
  );

  it('when requests arrive split at any byte, then each head, its bytes and its end are found', () => {
    for (let cut = 1; cut < requests.length; cut++) {
      const framing = new RequestFraming();
      const pieces = [...framing.push(requests.subarray(0, cut)), ...framing.push(requests.subarray(cut))];
      expect(Buffer.concat(pieces.map((p) => p.bytes))).toEqual(requests);
      expect(pieces.filter((p) => p.head).map((p) => p.head!.split(' ')[1])).toEqual([
        '/b/k1',
        '/b/k2',
        '/b/k3',
      ]);
      expect(pieces.filter((p) => p.end).length).toBe(3);
      // Each request ends before the next head.
      const order = pieces.flatMap((p) => [...(p.head ? ['head'] : []), ...(p.end ? ['end'] : [])]);
      expect(order).toEqual(['head', 'end', 'head', 'end', 'head', 'end']);
    }
  });
});
