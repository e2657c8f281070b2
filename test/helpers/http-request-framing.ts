/** A run of bytes of an HTTP/1.1 request stream: a whole head, or part of a body. */
export interface RequestPiece {
  bytes: Buffer;
  /** Set on the piece that is a request's head: its text (request line and headers). */
  head?: string;
  /** Set on the piece that completes a request (its head, when it has no body). */
  end?: boolean;
}

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'trailer';

const HEAD_END = Buffer.from('\r\n\r\n');
/** No client of ours sends a bigger head: past it the stream is not HTTP. */
const MAX_HEAD = 64 * 1024;

/**
 * Splits what a client sends on one connection into request heads and body bytes, as they
 * arrive, so a proxy can decide about a request from its head before forwarding any of it.
 * Bodies are framed by Content-Length or chunked transfer coding, as HTTP/1.1 clients send them.
 */
export class RequestFraming {
  private state: State = 'head';
  private pending = Buffer.alloc(0);
  private remaining = 0;
  private line = '';

  push(chunk: Buffer): RequestPiece[] {
    const pieces: RequestPiece[] = [];
    let data = chunk;
    while (data.length > 0) {
      if (this.state === 'head') {
        const joined = Buffer.concat([this.pending, data]);
        const end = joined.indexOf(HEAD_END);
        if (end === -1) {
          if (joined.length > MAX_HEAD) throw new Error(`no end of request head in ${joined.length} bytes`);
          this.pending = joined;
          return pieces;
        }
        this.pending = Buffer.alloc(0);
        const bytes = joined.subarray(0, end + HEAD_END.length);
        const head = bytes.toString('latin1');
        data = joined.subarray(end + HEAD_END.length);
        this.startBody(head);
        pieces.push({ bytes, head, ...(this.state === 'head' ? { end: true } : {}) });
      } else if (this.state === 'length' || this.state === 'chunk-data') {
        const n = Math.min(this.remaining, data.length);
        this.remaining -= n;
        const done = this.remaining === 0;
        const wasLength = this.state === 'length';
        if (done) this.state = wasLength ? 'head' : 'chunk-size';
        pieces.push({ bytes: data.subarray(0, n), ...(done && wasLength ? { end: true } : {}) });
        data = data.subarray(n);
      } else {
        // A chunk-size line, or the trailer after the last chunk: read line by line.
        const newline = data.indexOf(0x0a);
        const take = newline === -1 ? data.length : newline + 1;
        this.line += data.subarray(0, take).toString('latin1');
        const bytes = data.subarray(0, take);
        data = data.subarray(take);
        if (newline === -1) {
          pieces.push({ bytes });
          continue;
        }
        const line = this.line.trim();
        this.line = '';
        let end = false;
        if (this.state === 'chunk-size') {
          const size = Number.parseInt(line.split(';')[0]!, 16);
          if (!Number.isSafeInteger(size)) throw new Error(`bad chunk size line: ${JSON.stringify(line)}`);
          if (size === 0) this.state = 'trailer';
          else {
            this.state = 'chunk-data';
            this.remaining = size + 2; // the chunk and its CRLF
          }
        } else if (line === '') {
          this.state = 'head';
          end = true;
        }
        pieces.push({ bytes, ...(end ? { end: true } : {}) });
      }
    }
    return pieces;
  }

  private startBody(head: string): void {
    const header = (name: string) =>
      new RegExp(`^${name}:[ \\t]*(.*?)[ \\t]*$`, 'im').exec(head.slice(head.indexOf('\r\n')))?.[1];
    if (/(^|,)\s*chunked\s*$/i.test(header('transfer-encoding') ?? '')) {
      this.state = 'chunk-size';
      return;
    }
    const length = Number(header('content-length') ?? '0');
    if (!Number.isSafeInteger(length) || length < 0) throw new Error(`bad Content-Length in ${head}`);
    this.remaining = length;
    this.state = length > 0 ? 'length' : 'head';
  }
}
