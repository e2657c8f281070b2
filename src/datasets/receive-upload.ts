import { createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { errorMessage } from '../fs-durable.js';
import { datasetTooLarge, formatCount, uploadIncomplete } from './dataset-errors.js';

export interface ReceiveOptions {
  maxBytes: number;
  /** Content-Length as the client declared it: over the limit is refused before reading anything. */
  declaredBytes?: number | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Streams an upload's body to `file`, counting bytes, and returns how many there were. A body that
 * passes `maxBytes` fails with a 413 at the chunk that passes it: nothing more is read or stored.
 *
 * The body is never destroyed here, whatever happens: on an early failure it is left paused, so
 * the route can still answer the client (a 413 with a lingering close) instead of the socket
 * being reset under it.
 */
export async function receiveUpload(
  body: NodeJS.ReadableStream | Readable,
  file: string,
  options: ReceiveOptions,
): Promise<number> {
  const { maxBytes, declaredBytes, signal } = options;
  if (declaredBytes !== undefined && declaredBytes > maxBytes) throw tooLarge(declaredBytes, maxBytes, 'is');
  signal?.throwIfAborted();
  const out = createWriteStream(file, { flags: 'wx' });
  let bytes = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (error?: unknown) => {
        if (settled) return;
        settled = true;
        body.pause();
        body.removeListener('data', onData);
        body.removeListener('end', onEnd);
        body.removeListener('error', onBodyError);
        body.removeListener('close', onClose);
        out.removeListener('error', onFileError);
        signal?.removeEventListener('abort', onAbort);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onData = (chunk: Buffer | string) => {
        bytes += chunk.length;
        if (bytes > maxBytes) return settle(tooLarge(bytes, maxBytes, 'has reached'));
        if (!out.write(chunk)) {
          body.pause();
          out.once('drain', () => {
            if (!settled) body.resume();
          });
        }
      };
      const onEnd = () => settle();
      // The client's side failing (a reset connection) is the client's problem, not a server error.
      const onBodyError = (error: unknown) =>
        settle(
          uploadIncomplete(
            `the upload stopped after ${formatCount(bytes)} bytes: ${errorMessage(error)}`,
            error,
          ),
        );
      const onFileError = (error: unknown) => settle(error);
      // A request whose client went away closes without 'end' (and, on some Node versions, without 'error').
      const onClose = () => settle(uploadIncomplete(`the upload stopped after ${formatCount(bytes)} bytes`));
      const onAbort = () => settle(signal?.reason);
      body.on('data', onData);
      body.once('end', onEnd);
      body.once('error', onBodyError);
      body.once('close', onClose);
      out.once('error', onFileError);
      signal?.addEventListener('abort', onAbort, { once: true });
      body.resume();
    });
  } finally {
    await new Promise<void>((resolve) => out.end(resolve));
  }
  return bytes;
}

function tooLarge(bytes: number, maxBytes: number, verb: string) {
  return datasetTooLarge(
    `the upload ${verb} ${formatCount(bytes)} bytes, more than the limit of ${formatCount(maxBytes)} (DATASET_MAX_BYTES)`,
  );
}
