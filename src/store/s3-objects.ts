import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomUUID } from 'node:crypto';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type ListObjectsV2CommandOutput,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { S3Location } from './store-location.js';

/** One object under a listed prefix. */
export interface ListedObject {
  /** The key without the store's prefix. */
  name: string;
  size: number;
  lastModified: Date;
  /** Changes whenever the object is written again with other content; '' if the server gave none. */
  etag: string;
}

export interface S3ObjectsOptions {
  /** For tests against a local server; otherwise the SDK's default chain finds them. */
  credentials?: S3ClientConfig['credentials'];
  /** @default 10_000 */
  requestTimeoutMs?: number;
}

/** DeleteObjects takes at most this many keys per request. */
const DELETE_BATCH = 1000;
/** lib-storage's smallest part; larger files go up in parts of this size, 4 at a time. */
const PART_BYTES = 8 * 1024 * 1024;

/**
 * The few object operations the stores need, on one bucket under one key prefix, with names
 * relative to that prefix. Missing objects are null or false, not errors; anything else (the
 * server away, access denied) is thrown as the SDK reports it.
 */
export class S3Objects {
  constructor(
    readonly client: S3Client,
    readonly bucket: string,
    /** '' or ends in '/'. */
    readonly prefix: string,
  ) {}

  static open(location: S3Location, options: S3ObjectsOptions = {}): S3Objects {
    const client = new S3Client({
      region: location.region,
      ...(location.endpoint ? { endpoint: location.endpoint } : {}),
      forcePathStyle: location.forcePathStyle,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      // Checksums only where S3 requires them: many S3-compatible servers do not understand the
      // SDK's newer default (aws-chunked bodies with trailing CRCs) and would store the framing.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: 3000,
        requestTimeout: options.requestTimeoutMs ?? 10_000,
      },
    });
    return new S3Objects(client, location.bucket, location.prefix);
  }

  key(name: string): string {
    return this.prefix + name;
  }

  /** The object's bytes; null when there is none. */
  async get(name: string): Promise<Buffer | null> {
    try {
      const answer = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.key(name) }),
      );
      return Buffer.from(await answer.Body!.transformToByteArray());
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  /**
   * Writes an object whole (S3 never shows half of one). With `ifAbsent`, only when there is none
   * yet (`If-None-Match: *`): false when there is. Servers without conditional writes ignore it.
   */
  async put(name: string, body: Uint8Array | string, options: { ifAbsent?: boolean } = {}): Promise<boolean> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.key(name),
          Body: body,
          ...(options.ifAbsent ? { IfNoneMatch: '*' } : {}),
        }),
      );
      return true;
    } catch (err) {
      if (options.ifAbsent && statusOf(err) === 412) return false;
      throw err;
    }
  }

  /** Uploads a local file, in parts when large (lib-storage), without reading it into memory. */
  async upload(name: string, file: string): Promise<void> {
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: this.key(name), Body: createReadStream(file) },
      partSize: PART_BYTES,
      queueSize: 4,
      leavePartsOnError: false,
    });
    await upload.done();
  }

  /**
   * Downloads an object to a local file, written aside and renamed, so the file is whole or
   * absent. False when there is no such object.
   */
  async download(name: string, file: string): Promise<boolean> {
    let body: Readable;
    try {
      const answer = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.key(name) }),
      );
      body = answer.Body as Readable;
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${randomUUID()}.part`;
    try {
      await pipeline(body, createWriteStream(tmp, { flags: 'wx' }));
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return true;
  }

  /** The names directly under `dir` (which ends in '/' or is ''): sub-"directories" end in '/'. */
  async children(dir: string): Promise<string[]> {
    const names: string[] = [];
    const cut = this.key(dir).length;
    for await (const page of this.pages(dir, '/')) {
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) names.push(p.Prefix.slice(cut));
      for (const o of page.Contents ?? []) if (o.Key) names.push(o.Key.slice(cut));
    }
    return names;
  }

  /** Every object whose name starts with `dir`, at any depth. */
  async list(dir: string): Promise<ListedObject[]> {
    const found: ListedObject[] = [];
    for await (const page of this.pages(dir)) {
      for (const o of page.Contents ?? []) {
        if (!o.Key) continue;
        found.push({
          name: o.Key.slice(this.prefix.length),
          size: o.Size ?? 0,
          lastModified: o.LastModified ?? new Date(0),
          etag: o.ETag ?? '',
        });
      }
    }
    return found;
  }

  /** The listing of `dir`, page after page (S3 answers at most 1,000 keys a page). */
  private async *pages(dir: string, delimiter?: string): AsyncGenerator<ListObjectsV2CommandOutput> {
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.key(dir),
          ...(delimiter ? { Delimiter: delimiter } : {}),
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
      yield page;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Deletes objects by name; missing ones are no error. */
  async remove(names: readonly string[]): Promise<void> {
    for (let i = 0; i < names.length; i += DELETE_BATCH) {
      const batch = names.slice(i, i + DELETE_BATCH);
      const answer = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((name) => ({ Key: this.key(name) })), Quiet: true },
        }),
      );
      const failed = (answer.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0)
        throw new Error(
          `could not delete ${failed.length} object(s) from s3://${this.bucket}/${this.prefix}: ${failed[0]!.Key}: ${failed[0]!.Code} ${failed[0]!.Message ?? ''}`,
        );
    }
  }

  /** Deletes every object under `dir`. */
  async removeAll(dir: string): Promise<void> {
    await this.remove((await this.list(dir)).map((o) => o.name));
  }

  /** Throws unless the bucket answers (readiness). */
  async probe(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  /**
   * Throws unless objects under `dir` can be listed right now: one ListObjectsV2 of at most one
   * entry, which credentials scoped to the store's prefix allow where HeadBucket needs the bucket.
   * With the delimiter, s3rver counts only the objects directly under `dir` (it answers a truncated
   * listing with an InternalError on Node 20: its continuation tokens use DES, which OpenSSL 3
   * leaves out).
   */
  async probeList(dir: string): Promise<void> {
    await this.client.send(
      new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.key(dir), Delimiter: '/', MaxKeys: 1 }),
    );
  }

  close(): void {
    this.client.destroy();
  }
}

function statusOf(err: unknown): number | undefined {
  return err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
}

function isMissing(err: unknown): boolean {
  return (
    err instanceof S3ServiceException && (err.name === 'NoSuchKey' || err.$metadata.httpStatusCode === 404)
  );
}
