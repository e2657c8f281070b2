import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { lingerBeforeClose } from '../../src/api/lingering-close.js';

/** A TCP server whose one connection answers at once, then closes as Node's HTTP server does. */
async function answeringServer(
  lingerMs: number,
): Promise<{ server: Server; port: number; closed: Promise<number> }> {
  let markClosed!: (at: number) => void;
  const closed = new Promise<number>((resolve) => (markClosed = resolve));
  const server = createServer((socket: Socket) => {
    socket.on('data', () => undefined);
    socket.on('close', () => markClosed(performance.now()));
    lingerBeforeClose(socket, lingerMs);
    socket.write('answer');
    socket.destroySoon();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, closed };
}

// The clients keep their side open when the server ends its own (allowHalfOpen), as a client still
// uploading does; Node's default would end it for them.
describe('lingering close', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  it('when the client goes on sending after the answer, then it gets the answer and no reset, and the server closes when the client ends', async () => {
    const s = await answeringServer(10_000);
    server = s.server;
    const client = connect({ port: s.port, host: '127.0.0.1', allowHalfOpen: true });
    let received = '';
    let error: Error | undefined;
    client.on('data', (chunk) => (received += chunk.toString()));
    client.on('error', (err) => (error = err));
    const piece = Buffer.alloc(64 * 1024, 1);
    for (let i = 0; i < 64; i++) {
      if (!client.write(piece)) await new Promise((r) => client.once('drain', r));
    }
    const ended = performance.now();
    client.end();
    await new Promise((r) => client.on('close', r));
    expect(error).toBeUndefined();
    expect(received).toBe('answer');
    // Closed because the client ended, long before the linger time ran out.
    expect((await s.closed) - ended).toBeLessThan(5_000);
  });

  it('when the client neither sends nor ends, then the server closes after the linger time', async () => {
    const s = await answeringServer(200);
    server = s.server;
    const client = connect({ port: s.port, host: '127.0.0.1', allowHalfOpen: true });
    const opened = performance.now();
    client.on('error', () => undefined);
    client.resume();
    expect((await s.closed) - opened).toBeGreaterThanOrEqual(150);
    client.destroy();
  });
});
