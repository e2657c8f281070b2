import { DomainError } from '../errors.js';

const TOO_MANY = { status: 429, code: 'too_many_streams' } as const;

export interface StreamCapOptions {
  /** Streams one client address may have open at once. */
  perClient: number;
  /** Streams open at once in this process. */
  total: number;
}

/**
 * Counts open event streams by client address. A stream lasts as long as its job, so without a
 * cap one client could hold every connection the server takes (issue 12).
 */
export class StreamCaps {
  private readonly byClient = new Map<string, number>();
  private open = 0;

  constructor(private readonly options: StreamCapOptions) {}

  /** Streams open now. */
  get total(): number {
    return this.open;
  }

  /** Counts one more stream for `client`, or throws a 429; the function returned ends it (once). */
  admit(client: string): () => void {
    const mine = this.byClient.get(client) ?? 0;
    if (mine >= this.options.perClient) {
      throw new DomainError(
        `this client has ${mine} job event streams open, the most allowed per client ` +
          '(EVENT_STREAMS_PER_CLIENT); close one first',
        TOO_MANY,
      );
    }
    if (this.open >= this.options.total) {
      throw new DomainError(
        `this server has ${this.open} job event streams open, the most it allows (EVENT_STREAMS_MAX); ` +
          'try again later or poll GET /jobs/:id',
        TOO_MANY,
      );
    }
    this.byClient.set(client, mine + 1);
    this.open++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.open--;
      const left = this.byClient.get(client)! - 1;
      if (left === 0) this.byClient.delete(client);
      else this.byClient.set(client, left);
    };
  }
}
