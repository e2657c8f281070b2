import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { isErrno, syncDirectory, writeDurably } from '../fs-durable.js';
import { entryNames, removeLeftovers, STAGING } from '../registry/store-cleanup.js';
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

/**
 * The feedback examples on a disk every API shares:
 *
 *   <root>/<id>.json          an example, never rewritten
 *   <root>/.staging/<...>     an example being written (left by a crash: cleanStaging()'s)
 *
 * An example is written whole and fsynced aside, then linked to its name: link(2), unlike
 * rename(2), fails when the name is taken, so of two adds of one image exactly one stores it.
 */
export class FileFeedbackStore implements FeedbackStore {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  get location(): string {
    return this.root;
  }

  async add(example: FeedbackExample): Promise<{ created: boolean; stored: FeedbackExample }> {
    const { checked, bytes } = recordOf(example);
    const file = this.file(checked.id);
    const staging = path.join(this.root, STAGING);
    await mkdir(staging, { recursive: true });
    const tmp = path.join(staging, `${checked.id}-${randomUUID()}.json`);
    try {
      await writeDurably(tmp, bytes);
      for (;;) {
        if (await linkIfAbsent(tmp, file)) {
          await syncDirectory(this.root);
          return { created: true, stored: checked };
        }
        const stored = await this.read(checked.id);
        // Else removed between the link and the read: the name is free again.
        if (stored) return { created: false, stored: parseStored(stored, checked.id, this.file(checked.id)) };
      }
    } finally {
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  }

  async get(id: FeedbackId): Promise<FeedbackExample | null> {
    if (!feedbackIdSchema.safeParse(id).success) return null;
    const bytes = await this.read(id);
    return bytes && parseOrNull(bytes, id, this.file(id));
  }

  async list(): Promise<FeedbackExample[]> {
    const ids = (await entryNames(this.root)).map(idOfRecordName).filter((id) => id !== null);
    return oldestFirst(await readBounded(ids, (id) => this.get(id)));
  }

  async count(): Promise<number> {
    return (await entryNames(this.root)).filter((name) => idOfRecordName(name) !== null).length;
  }

  async remove(id: FeedbackId): Promise<boolean> {
    if (!feedbackIdSchema.safeParse(id).success) return false;
    try {
      await unlink(this.file(id));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
    await syncDirectory(this.root);
    return true;
  }

  /**
   * Deletes the temp files of adds that crashed, if untouched for `olderThanMs`
   * (store-cleanup.ts's LEFTOVER_AFTER_MS at start-up). Returns the deleted paths.
   */
  async cleanStaging(olderThanMs: number): Promise<string[]> {
    return removeLeftovers(this.root, olderThanMs);
  }

  /** Throws a RangeError unless `id` is a feedback id. */
  file(id: FeedbackId): string {
    return path.join(this.root, recordName(id));
  }

  private async read(id: FeedbackId): Promise<Buffer | null> {
    try {
      return await readFile(this.file(id));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return null;
      throw err;
    }
  }
}

/** Makes `target` a second name of `file`; false when `target` exists. */
async function linkIfAbsent(file: string, target: string): Promise<boolean> {
  try {
    await link(file, target);
    return true;
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return false;
    throw err;
  }
}
