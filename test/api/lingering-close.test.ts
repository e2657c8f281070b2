import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { lingerBeforeClose } from '../../src/api/lingering-close.js';

const HOUR_MS = 3_600_000;

/** A TCP server whose one connection answers at once, then closes as Node's HTTP server does. */
async function answeringServer(lingerMs: number) {
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => (markClosed = resolve));
  let markRead!: () => void;
  const readAfterAnswer = new Promise<void>((resolve) => (markRead = resolve));
  const state = { closed: false };
  const server = createServer((socket: Socket) => {
    socket.on('data', () => markRead());
    socket.on('close', () => {
      state.closed = true;
      markClosed();
    });
    lingerBeforeClose(socket, lingerMs);
    socket.write('answer');
    socket.destroySoon();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { server, port, closed, readAfterAnswer, state };
}

// The clients keep their side open when the server ends its own (allowHalfOpen), as a client still
// uploading does; Node's default would end it for them.
describe('lingering close', () => {
  let server: Server | undefined;
  afterEach(() => {
    vi.useRealTimers();
    server?.close();
  });

  it('when the client goes on sending after the answer, then it gets the answer and no reset, and the server closes when the client ends', async () => {
    // An hour of linger: if the server closed on its timer rather than on the client's end, the
    // test would time out instead of passing.
    const s = await answeringServer(HOUR_MS);
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
    client.end();
    await new Promise((r) => client.on('close', r));
    await s.closed;
    expect(error).toBeUndefined();
    expect(received).toBe('answer');
  });

  it('when the client neither sends nor ends, then the server reads on until the linger time, then closes', async () => {
    // Only the linger timer is under the test's control; sockets stay real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const s = await answeringServer(200);
    server = s.server;
    const client = connect({ port: s.port, host: '127.0.0.1', allowHalfOpen: true });
    client.on('error', () => undefined);
    client.resume();
    // The server has answered and ended its side, yet still reads what the client sends.
    await new Promise((resolve) => client.once('end', resolve));
    client.write('more');
    await s.readAfterAnswer;
    vi.advanceTimersByTime(199);
    expect(s.state.closed).toBe(false);
    vi.advanceTimersByTime(1);
    await s.closed;
    client.destroy();
  });
});
