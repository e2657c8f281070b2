import { createReadStream } from 'node:fs';

/** A line is longer than the caller allows: `line` is its 1-based number. */
export class LineTooLongError extends Error {
  override name = 'LineTooLongError';
  constructor(
    readonly line: number,
    readonly maxBytes: number,
  ) {
    super(`line ${line} is longer than ${maxBytes} bytes`);
  }
}

/**
 * The lines of a file (LF or CRLF), streamed: never the whole file in memory, and never one line
 * beyond `maxLineBytes` either. readline would buffer a file without newlines whole, as one line.
 */
export async function* readLines(
  file: string,
  maxLineBytes: number,
  signal?: AbortSignal,
): AsyncGenerator<string, void, undefined> {
  const stream = createReadStream(file, { highWaterMark: 256 * 1024, signal });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let line = 0;
  const take = (last: Buffer): string => {
    const bytes = pending.length === 0 ? last : Buffer.concat([...pending, last]);
    pending = [];
    pendingBytes = 0;
    line++;
    const end = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
    return bytes.toString('utf8', 0, end);
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let start = 0;
    for (let newline = chunk.indexOf(0x0a); newline >= 0; newline = chunk.indexOf(0x0a, start)) {
      if (pendingBytes + newline - start > maxLineBytes + 1)
        throw new LineTooLongError(line + 1, maxLineBytes);
      yield take(chunk.subarray(start, newline));
      start = newline + 1;
    }
    const rest = chunk.subarray(start);
    pendingBytes += rest.length;
    if (pendingBytes > maxLineBytes + 1) throw new LineTooLongError(line + 1, maxLineBytes);
    if (rest.length > 0) pending.push(Buffer.from(rest));
  }
  if (pendingBytes > 0) yield take(Buffer.alloc(0));
}
