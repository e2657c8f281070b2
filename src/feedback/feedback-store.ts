import type { FeedbackExample, FeedbackId } from './feedback-schema.js';

/**
 * The corrections clients sent (POST /feedback), in the same store as models and datasets. Two
 * backends keep the same promises (test/feedback/feedback-store-contract.test.ts checks both): a
 * directory (file-feedback-store.ts) and S3-compatible object storage (s3-feedback-store.ts).
 *
 * - An example is visible whole or not at all; it is never changed, only removed.
 * - One example per id (per image): of two adds of the same id, racing or not, exactly one stores
 *   and the other is told what is stored.
 */
export interface FeedbackStore {
  /** Where the store is, for logs and messages: a directory or s3://bucket/prefix. */
  readonly location: string;
  /**
   * Stores `example` unless its id is stored already. `created` says which; `stored` is what the
   * store now holds for the id (the earlier example when there was one).
   */
  add(example: FeedbackExample): Promise<{ created: boolean; stored: FeedbackExample }>;
  /** Null when there is no such example. */
  get(id: FeedbackId): Promise<FeedbackExample | null>;
  /** Every stored example, oldest first (then by id). Broken records are left out. */
  list(): Promise<FeedbackExample[]>;
  /** How many examples are stored, without reading them. */
  count(): Promise<number>;
  /** Deletes an example; false when there was none. */
  remove(id: FeedbackId): Promise<boolean>;
  /**
   * Deletes what crashed adds left (temp files of the directory backend; S3 writes leave none),
   * if untouched for `olderThanMs`. Returns what it deleted.
   */
  cleanStaging(olderThanMs: number): Promise<string[]>;
}
