import { connect, type Socket } from 'node:net';

/** A request in parts; `sendRaw` writes it out byte for byte, with Host, Connection: close and Content-Length. */
export interface HttpRequest {
  method: string;
  path: string;
  /** A header given as '' is left out, the defaults included. */
  headers?: Record<string, string>;
  body?: Buffer;
}

export interface RawAnswer {
  /** null when the connection closed or failed before a status line arrived. */
  status: number | null;
  /** Everything the server sent. */
  text: string;
  /** What came after the head. */
  body: string;
  /** The first error on the connection, or that no answer came in time. */
  error?: string;
  ms: number;
}

/** A raw TCP client, once the server has closed: everything it sent. */
export interface RawConnection {
  socket: Socket;
  closed: Promise<string>;
  /** Whether the server has sent anything yet. */
  answered(): boolean;
  /** The first error on the connection, if any. */
  error(): string | undefined;
}

export const statusOf = (text: string): number | null => {
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return status ? Number(status[1]) : null;
};

const bodyTextOf = (text: string): string => {
  const split = text.indexOf('\r\n\r\n');
  return split >= 0 ? text.slice(split + 4) : '';
};

/** The JSON body of an answer. */
export const bodyOf = (text: string): unknown => JSON.parse(bodyTextOf(text));

/**
 * A TCP connection to 127.0.0.1 that sends `bytes` and then only what the caller writes on its
 * socket: for half requests, slow clients and connections held open.
 */
export function openRaw(
  port: number,
  bytes: string | Buffer = '',
  options: { localAddress?: string } = {},
): RawConnection {
  const socket = connect({ port, host: '127.0.0.1', ...options });
  const chunks: Buffer[] = [];
  let error: string | undefined;
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', (err) => (error ??= err.message));
  const closed = new Promise<string>((resolve) =>
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1'))),
  );
  if (bytes.length > 0) socket.write(bytes);
  return { socket, closed, answered: () => chunks.length > 0, error: () => error };
}

/**
 * Sends a request over its own connection and reads the answer until the server closes, so
 * anything can be sent: bytes no HTTP client would put in a path or header (`request` in parts),
 * or no valid HTTP at all (`request` as bytes). The body goes in pieces; by default no more of it
 * once an answer has begun, as a client that reads while it sends; with `readWhileSending: false`
 * all of it, as one that does not. Either then says it is done sending.
 */
export async function sendRaw(
  port: number,
  request: HttpRequest | Buffer | string,
  { timeoutMs = 30_000, readWhileSending = true }: { timeoutMs?: number; readWhileSending?: boolean } = {},
): Promise<RawAnswer> {
  const started = performance.now();
  const { head, body } = encode(request);
  const connection = openRaw(port, head);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    connection.socket.destroy();
  }, timeoutMs);
  void sendBody(connection, body, readWhileSending);
  const text = await connection.closed;
  clearTimeout(timer);
  const error = timedOut ? `no answer within ${timeoutMs} ms` : connection.error();
  return {
    status: statusOf(text),
    text,
    body: bodyTextOf(text),
    ...(error ? { error } : {}),
    ms: performance.now() - started,
  };
}

const CHUNK = 64 * 1024;

async function sendBody({ socket, answered }: RawConnection, body: Buffer, readWhileSending: boolean) {
  const stop = () => socket.destroyed || (readWhileSending && answered());
  for (let at = 0; at < body.length && !stop(); at += CHUNK) {
    if (!socket.write(body.subarray(at, at + CHUNK)))
      await new Promise((r) => {
        socket.once('drain', r);
        socket.once('close', r);
      });
  }
  if (!socket.destroyed && (!readWhileSending || answered())) socket.end();
}

function encode(request: HttpRequest | Buffer | string): { head: Buffer; body: Buffer } {
  if (typeof request === 'string' || Buffer.isBuffer(request))
    return { head: Buffer.from(request), body: Buffer.alloc(0) };
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
