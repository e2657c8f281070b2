import type { S3Objects } from '../store/s3-objects.js';
import {
  idOfRecordName,
  oldestFirst,
  parseOrNull,
  parseStored,
  readBounded,
  recordName,
  recordOf,
} from './feedback-records.js';
import { feedbackIdSchema, type FeedbackExample, type FeedbackId } from './feedback-schema.js';
import type { FeedbackStore } from './feedback-store.js';

const FEEDBACK = 'feedback/';

/** What list() read of an object: null when its record is broken. */
interface Cached {
  etag: string;
  example: FeedbackExample | null;
}

/**
 * The feedback examples in S3-compatible object storage: `feedback/<id>.json` under the store's
 * prefix, each written once with `If-None-Match: *`, so of two adds of one image exactly one
 * stores it (on a server that enforces the header: AWS S3, MinIO, R2 and Ceph do).
 *
 * list() runs on every GET /feedback and every background evaluation, so the examples it has
 * read are kept, by object name and ETag: an example is fetched once per process, and again only
 * if its object is written anew (removed and added with other content).
 */
export class S3FeedbackStore implements FeedbackStore {
  private readonly cache = new Map<string, Cached>();

  constructor(readonly objects: S3Objects) {}

  get location(): string {
    return `s3://${this.objects.bucket}/${this.objects.prefix}${FEEDBACK}`;
  }

  async add(example: FeedbackExample): Promise<{ created: boolean; stored: FeedbackExample }> {
    const { checked, bytes } = recordOf(example);
    const name = this.name(checked.id);
    for (;;) {
      // A plain duplicate (the same image sent again) is found without a write, on any server.
      const earlier = await this.objects.get(name);
      if (earlier) return { created: false, stored: parseStored(earlier, checked.id, this.where(name)) };
      // False when another add stored it since; else removed again since: the loop finds which.
      if (!(await this.objects.put(name, bytes, { ifAbsent: true }))) continue;
      // A server that ignores If-None-Match keeps the last of two racing writes: read back, so
      // at least the one overwritten last does not say it stored its own.
      const now = await this.objects.get(name);
      if (now && !now.equals(bytes))
        return { created: false, stored: parseStored(now, checked.id, this.where(name)) };
      return { created: true, stored: checked };
    }
  }

  async get(id: FeedbackId): Promise<FeedbackExample | null> {
    if (!feedbackIdSchema.safeParse(id).success) return null;
    const name = this.name(id);
    const bytes = await this.objects.get(name);
    return bytes && parseOrNull(bytes, id, this.where(name));
  }

  async list(): Promise<FeedbackExample[]> {
    const listed = (await this.objects.list(FEEDBACK)).flatMap((object) => {
      const id = idOfRecordName(object.name.slice(FEEDBACK.length));
      return id ? [{ id, name: object.name, etag: object.etag }] : [];
    });
    const present = new Set(listed.map((o) => o.name));
    for (const name of this.cache.keys()) if (!present.has(name)) this.cache.delete(name);
    const examples = await readBounded(listed, async ({ id, name, etag }) => {
      const cached = this.cache.get(name);
      if (cached && etag !== '' && cached.etag === etag) return cached.example;
      const bytes = await this.objects.get(name);
      // Removed since the listing.
      if (!bytes) return null;
      const example = parseOrNull(bytes, id, this.where(name));
      // Written anew between the listing and the read: cached under the old ETag, it is read
      // again next time, which is all that costs.
      if (etag !== '') this.cache.set(name, { etag, example });
      return example;
    });
    return oldestFirst(examples);
  }

  async count(): Promise<number> {
    const listed = await this.objects.list(FEEDBACK);
    return listed.filter((o) => idOfRecordName(o.name.slice(FEEDBACK.length)) !== null).length;
  }

  async remove(id: FeedbackId): Promise<boolean> {
    if (!feedbackIdSchema.safeParse(id).success) return false;
    const name = this.name(id);
    // S3 deletes say nothing of whether there was an object: look first.
    if (!(await this.objects.get(name))) return false;
    await this.objects.remove([name]);
    this.cache.delete(name);
    return true;
  }

  /** A PUT is whole or not there: nothing to clean. */
  async cleanStaging(): Promise<string[]> {
    return [];
  }

  /** Throws a RangeError unless `id` is a feedback id. */
  private name(id: FeedbackId): string {
    return FEEDBACK + recordName(id);
  }

  private where(name: string): string {
    return `s3://${this.objects.bucket}/${this.objects.key(name)}`;
  }
}
