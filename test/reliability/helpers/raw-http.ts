import { connect } from 'node:net';
import type { BadRequest } from './bad-requests.js';

export interface RawAnswer {
  /** null when the connection closed or failed before a status line arrived. */
  status: number | null;
  body: string;
  error?: string;
  ms: number;
}

/**
 * Sends a request as bytes over its own TCP connection (Connection: close), so anything can be
 * sent: bytes no HTTP client would put in a path or header, or no valid HTTP at all.
 */
export function sendRaw(port: number, request: BadRequest, timeoutMs = 30_000): Promise<RawAnswer> {
  const started = performance.now();
  const { head, body } = request.raw ? { head: request.raw, body: Buffer.alloc(0) } : encode(request);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    const socket = connect({ host: '127.0.0.1', port });
    const finish = () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      const split = text.indexOf('\r\n\r\n');
      resolve({
        status: status ? Number(status[1]) : null,
        body: split >= 0 ? text.slice(split + 4) : '',
        ...(error && !status ? { error } : {}),
        ms: performance.now() - started,
      });
    };
    const timer = setTimeout(() => {
      error = `no answer within ${timeoutMs} ms`;
      socket.destroy();
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err) => (error = err.message));
    socket.on('close', finish);
    socket.write(head);
    // The body in pieces, and no more of it once an answer has started to arrive, as a client
    // that reads while it sends would do; it then says it is done sending.
    void (async () => {
      for (let at = 0; at < body.length && chunks.length === 0 && !socket.destroyed; at += CHUNK) {
        if (!socket.write(body.subarray(at, at + CHUNK)))
          await new Promise((r) => {
            socket.once('drain', r);
            socket.once('close', r);
          });
      }
      if (chunks.length > 0 && !socket.destroyed) socket.end();
    })();
  });
}

const CHUNK = 64 * 1024;

function encode(request: BadRequest): { head: Buffer; body: Buffer } {
  const headers: Record<string, string> = {
    host: '127.0.0.1',
    connection: 'close',
    ...request.headers,
  };
  if (request.body) headers['content-length'] = String(request.body.length);
  const head = [
    `${request.method} ${request.path} HTTP/1.1`,
    ...Object.entries(headers)
      .filter(([, v]) => v !== '')
      .map(([k, v]) => `${k}: ${v}`),
    '',
    '',
  ].join('\r\n');
  return { head: Buffer.from(head, 'latin1'), body: request.body ?? Buffer.alloc(0) };
}
