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
