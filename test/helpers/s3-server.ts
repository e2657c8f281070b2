import { mkdirSync } from 'node:fs';
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import S3rver from 's3rver';
import { freePort } from './redis-server.js';

/** s3rver's fixed credentials: it checks signatures, so clients must sign with these. */
export const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/**
 * A real S3-protocol server (s3rver) on 127.0.0.1, its objects in `dir`, so it can be stopped and
 * started again on the same port with everything it held: the store going away and coming back.
 * It enforces `If-None-Match: *` on PUT as AWS S3 does (s3rver alone ignores it).
 */
export class S3Server {
  private server: S3rver | undefined;
  readonly endpoint: string;

  private constructor(
    readonly port: number,
    readonly dir: string,
    readonly bucket: string,
  ) {
    this.endpoint = `http://127.0.0.1:${port}`;
  }

  static async start(dir: string, bucket = 'digits-test'): Promise<S3Server> {
    const server = new S3Server(await freePort(), dir, bucket);
    await server.resume();
    return server;
  }

  /** Starts (again) on the same port and directory. */
  async resume(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    this.server = new S3rver({
      port: this.port,
      address: '127.0.0.1',
      directory: this.dir,
      silent: true,
      configureBuckets: [{ name: this.bucket, configs: [] }],
    });
    enforceIfNoneMatch(this.server, this.bucket);
    await this.server.run();
  }

  /** Stops listening: requests fail as against a store that is down. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.close();
  }

  /**
   * Makes object `key` look last written at `when`, as S3 would list an object written long ago:
   * s3rver gives an object's file time as its LastModified.
   */
  async age(key: string, when: Date): Promise<void> {
    const parts = key.split('/');
    const file = join(this.dir, this.bucket, ...parts.slice(0, -1), `${parts.at(-1)}._S3rver_object`);
    await utimes(file, when, when);
  }

  /** The environment child processes need to use this server as their store under `prefix`. */
  env(prefix: string): Record<string, string> {
    return {
      STORE_URL: `s3://${this.bucket}/${prefix}`,
      S3_ENDPOINT: this.endpoint,
      S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
    };
  }

  /** A location for S3Objects.open under `prefix` (no leading slash, ends in '/'). */
  location(prefix: string, cacheDir: string) {
    return {
      kind: 's3' as const,
      bucket: this.bucket,
      prefix,
      endpoint: this.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      cacheDir,
    };
  }
}

type Next = () => Promise<void>;
interface KoaContext {
  method: string;
  path: string;
  query: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
  req: NodeJS.ReadableStream;
  status: number;
  type: string;
  body: unknown;
}
interface KoaInternals {
  middleware: ((ctx: KoaContext, next: Next) => Promise<void>)[];
  store: { existsObject(bucket: string, key: string): Promise<boolean> };
}

/**
 * A PUT of an object with `If-None-Match: *` fails with 412 when the object exists, as on AWS S3:
 * conditional PUTs of one key take turns, so of two racing ones exactly one writes. Put first
 * among s3rver's middleware (Koa composes them when the server starts listening).
 */
function enforceIfNoneMatch(server: S3rver, bucket: string): void {
  const koa = server as unknown as KoaInternals;
  const turns = new Map<string, Promise<void>>();
  koa.middleware.unshift(async (ctx, next) => {
    const prefix = `/${bucket}/`;
    if (
      ctx.method !== 'PUT' ||
      ctx.headers['if-none-match'] !== '*' ||
      !ctx.path.startsWith(prefix) ||
      'uploadId' in ctx.query
    )
      return next();
    const key = decodeURIComponent(ctx.path.slice(prefix.length));
    const before = turns.get(key) ?? Promise.resolve();
    let done!: () => void;
    const released = new Promise<void>((resolve) => (done = resolve));
    const mine = before.then(() => released);
    turns.set(key, mine);
    await before;
    try {
      if (await koa.store.existsObject(bucket, key)) {
        // The body is read (and dropped) so the connection stays usable.
        for await (const chunk of ctx.req) void chunk;
        ctx.status = 412;
        ctx.type = 'application/xml';
        ctx.body =
          '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
          '<Message>At least one of the pre-conditions you specified did not hold</Message>' +
          '<Condition>If-None-Match</Condition></Error>';
        return;
      }
      await next();
    } finally {
      done();
      if (turns.get(key) === mine) turns.delete(key);
    }
  });
}
