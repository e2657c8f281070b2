import { connect, createServer, type Server, type Socket } from 'node:net';
import { RequestFraming } from './http-request-framing.js';

/** A request on its way to the server, as the proxy read it from its head. */
export interface SeenRequest {
  method: string;
  /** The object key, URL-decoded; null for a request on the bucket itself (a listing, a probe). */
  key: string | null;
  /** The query string, without '?'. */
  query: string;
  /** Date.now() when its head arrived. */
  at: number;
}

export interface TrapOptions {
  /**
   * 'request': the matching request never reaches the server. 'answer': the server handles it,
   * and its answer never reaches the client.
   * @default 'request'
   */
  at?: 'request' | 'answer';
  /**
   * 'cut': every connection is cut and new ones are refused until restore(), as for a store that
   * went away. 'hold': only that exchange stops (its client waits); everything else goes on.
   * @default 'cut'
   */
  then?: 'cut' | 'hold';
}

/** What a trap caught: the request, and when the proxy acted on it. */
export interface Sprung {
  request: SeenRequest;
  at: number;
}

/** One outage, once restored. */
export interface Outage {
  cutAt: number;
  restoredAt: number;
  ms: number;
  /** Connections the proxy cut when the outage began. */
  cutConnections: number;
  /** Connections refused (reset at once) while it lasted: the clients' retries. */
  refusedConnections: number;
}

interface Trap {
  match: (request: SeenRequest) => boolean;
  at: 'request' | 'answer';
  then: 'cut' | 'hold';
  spring: (sprung: Sprung) => void;
}

interface Link {
  client: Socket;
  upstream: Socket;
}

/**
 * A TCP proxy between S3 clients and a test's S3 server (path-style, plain HTTP) that makes the
 * store fail at a chosen request rather than at a chosen time: it forwards bytes, reads the head
 * of every request on its way, and when one matches an armed trap it cuts (or holds) at that
 * exact point. So a test can make the store go away during a publication or a model load by
 * construction, look at the service while it is away, and bring it back with restore().
 */
export class S3FaultProxy {
  readonly endpoint: string;
  /** Every request the proxy has seen, in order. */
  readonly requests: SeenRequest[] = [];
  private readonly links = new Set<Link>();
  private readonly traps = new Set<Trap>();
  private outage: { cutAt: number; cutConnections: number; refusedConnections: number } | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
    private readonly bucket: string,
  ) {
    this.endpoint = `http://127.0.0.1:${port}`;
  }

  /** A proxy on a free port of 127.0.0.1 in front of `target` (an http://host:port endpoint). */
  static async start(target: string, bucket: string): Promise<S3FaultProxy> {
    const url = new URL(target);
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as { port: number };
    const proxy = new S3FaultProxy(server, port, { host: url.hostname, port: Number(url.port) }, bucket);
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  get isCut(): boolean {
    return this.outage !== undefined;
  }

  /**
   * Arms a trap for the next request that `match`es; resolves once it has sprung. Several traps
   * may be armed at once; each springs once.
   */
  trap(match: (request: SeenRequest) => boolean, options: TrapOptions = {}): Promise<Sprung> {
    return new Promise((spring) => {
      this.traps.add({ match, at: options.at ?? 'request', then: options.then ?? 'cut', spring });
    });
  }

  /** Cuts every connection and refuses new ones until restore(). */
  cut(): void {
    if (this.outage) return;
    this.outage = { cutAt: Date.now(), cutConnections: this.links.size, refusedConnections: 0 };
    for (const link of [...this.links]) this.drop(link);
  }

  /** Accepts connections again; what the outage came to. */
  restore(): Outage {
    const outage = this.outage;
    if (!outage) throw new Error('restore() without an outage');
    this.outage = undefined;
    const restoredAt = Date.now();
    return { ...outage, restoredAt, ms: restoredAt - outage.cutAt };
  }

  async close(): Promise<void> {
    for (const link of [...this.links]) this.drop(link);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.outage) {
      this.outage.refusedConnections++;
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ ...this.target, noDelay: true });
    const link: Link = { client, upstream };
    this.links.add(link);
    const framing = new RequestFraming();
    /** A trap at 'answer' whose request is on its way: it springs on the server's first byte after. */
    let awaiting: { trap: Trap; request: SeenRequest; sent: boolean } | undefined;
    let held = false;

    client.on('data', (chunk: Buffer) => {
      if (held) return;
      let pieces;
      try {
        pieces = framing.push(chunk);
      } catch (err) {
        // Not HTTP as we know it: this proxy would rather fail loudly than guess.
        client.destroy(err as Error);
        return;
      }
      for (const piece of pieces) {
        if (piece.head !== undefined) {
          const request = this.read(piece.head);
          this.requests.push(request);
          const trap = [...this.traps].find((t) => t.match(request));
          if (trap) {
            this.traps.delete(trap);
            if (trap.at === 'request') {
              held = trap.then === 'hold';
              this.act(trap, request);
              return;
            }
            awaiting = { trap, request, sent: false };
          }
        }
        if (!upstream.write(piece.bytes)) {
          client.pause();
          upstream.once('drain', () => client.resume());
        }
        if (piece.end && awaiting) awaiting.sent = true;
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (held) return;
      if (awaiting?.sent) {
        const { trap, request } = awaiting;
        awaiting = undefined;
        held = trap.then === 'hold';
        this.act(trap, request);
        return;
      }
      if (!client.write(chunk)) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    });
    const end = () => this.drop(link);
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  }

  /** Springs a trap. On 'hold' the link stays open and forwards nothing more: its client waits. */
  private act(trap: Trap, request: SeenRequest): void {
    if (trap.then === 'cut') this.cut();
    trap.spring({ request, at: Date.now() });
  }

  private drop(link: Link): void {
    if (!this.links.delete(link)) return;
    // A reset, as a peer that went away abruptly gives: the client learns of it at once.
    if (!link.client.destroyed) link.client.resetAndDestroy();
    link.upstream.destroy();
  }

  private read(head: string): SeenRequest {
    const [method = '', target = ''] = head.slice(0, head.indexOf('\r\n')).split(' ');
    const question = target.indexOf('?');
    const path = question === -1 ? target : target.slice(0, question);
    const query = question === -1 ? '' : target.slice(question + 1);
    const bucketPath = `/${this.bucket}`;
    let key: string | null = null;
    if (path.startsWith(`${bucketPath}/`) && path.length > bucketPath.length + 1)
      key = path
        .slice(bucketPath.length + 1)
        .split('/')
        .map(decodeURIComponent)
        .join('/');
    return { method, key, query, at: Date.now() };
  }
}
