import { forEachBounded } from '../datasets/bounded-loop.js';
import { errorMessage } from '../fs-durable.js';
import {
  feedbackExampleSchema,
  feedbackIdSchema,
  type FeedbackExample,
  type FeedbackId,
} from './feedback-schema.js';

/**
 * How both feedback backends keep an example: `<id>.json`, one file or object each, written once.
 * Anything else beside them (a temp file, a stray copy) is no example.
 */
const RECORD_NAME = /^([0-9a-f]{20})\.json$/;

/** Throws a RangeError unless `id` is a feedback id: no path or key is built from anything else. */
export function recordName(id: FeedbackId): string {
  if (!feedbackIdSchema.safeParse(id).success) {
    throw new RangeError(`not a feedback id: ${JSON.stringify(String(id).slice(0, 100))}`);
  }
  return `${id}.json`;
}

/** The id a file or object name holds an example of; null for any other name. */
export function idOfRecordName(name: string): FeedbackId | null {
  return RECORD_NAME.exec(name)?.[1] ?? null;
}

/**
 * The example as checked (what get() will answer) and its record's bytes. Checked before it is
 * written, since a record that is no example would never be listed.
 */
export function recordOf(example: FeedbackExample): { checked: FeedbackExample; bytes: Buffer } {
  const checked = feedbackExampleSchema.parse(example);
  return { checked, bytes: Buffer.from(`${JSON.stringify(checked)}\n`, 'utf8') };
}

/** A stored record that is not an example (edited or copied in by hand, or under another id's name). */
export class FeedbackRecordError extends Error {
  override name = 'FeedbackRecordError';
}

export function parseRecord(bytes: Buffer, id: FeedbackId, where: string): FeedbackExample {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new FeedbackRecordError(`feedback ${id}: ${where} is not valid JSON: ${errorMessage(err)}`);
  }
  const parsed = feedbackExampleSchema.safeParse(json);
  if (!parsed.success) throw new FeedbackRecordError(`feedback ${id}: ${where} is not a feedback example`);
  if (parsed.data.id !== id) {
    throw new FeedbackRecordError(`feedback ${id}: ${where} says it is ${parsed.data.id} (copied by hand?)`);
  }
  return parsed.data;
}

/** The example, or null when the record is broken: what get() and list() show of it. */
export function parseOrNull(bytes: Buffer, id: FeedbackId, where: string): FeedbackExample | null {
  try {
    return parseRecord(bytes, id, where);
  } catch (err) {
    if (err instanceof FeedbackRecordError) return null;
    throw err;
  }
}

/**
 * The example that holds the id already, which an add answers. A broken record there would keep
 * the image out for good without a word, so it is an error naming the way out.
 */
export function parseStored(bytes: Buffer, id: FeedbackId, where: string): FeedbackExample {
  try {
    return parseRecord(bytes, id, where);
  } catch (err) {
    if (err instanceof FeedbackRecordError)
      err.message += `; it keeps this image from being stored until it is deleted (DELETE /feedback/${id})`;
    throw err;
  }
}

/**
 * The order list() answers in on both backends: oldest first, then by id. By time, not by text:
 * '...:00Z' sorts after '...:00.5Z' as text.
 */
export function oldestFirst(examples: FeedbackExample[]): FeedbackExample[] {
  return examples.sort(
    (a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt) || a.id.localeCompare(b.id),
  );
}

/** Records read at once by list(), to bound open files and requests. */
const READ_CONCURRENCY = 16;

/** `read` of each item, a few at a time; the nulls (missing or broken records) left out. */
export async function readBounded<T, R>(
  items: readonly T[],
  read: (item: T) => Promise<R | null>,
): Promise<R[]> {
  const found: (R | null)[] = [];
  await forEachBounded(items.length, READ_CONCURRENCY, async (i) => {
    found[i] = await read(items[i]!);
  });
  return found.filter((r): r is R => r !== null && r !== undefined);
}
