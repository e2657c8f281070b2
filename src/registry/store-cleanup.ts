import { randomUUID } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { isErrno, syncDirectory } from '../fs-durable.js';

/**
 * The staging and trash discipline the stores on disk share (the model store, the dataset store):
 * an entry is written under `<root>/.staging/` and renamed into view whole; it is renamed into
 * `<root>/.trash/` before it is deleted, so nobody sees half of it; what a crash leaves in either
 * is removed once old.
 */
export const STAGING = '.staging';
export const TRASH = '.trash';

/**
 * Untouched this long, a staging or trash entry is what a crash left behind. A publication
 * writes its staging dir in seconds, and one that waits longer for its claim (Redis away) has
 * lost its job lock well before this, so it would be refused anyway. Age, not a pid marker: the
 * store is shared by processes on several machines, and a pid says nothing about another host.
 */
export const LEFTOVER_AFTER_MS = 60 * 60 * 1000;

/** A store with staging leftovers to clean. */
export interface StagedStore {
  cleanStaging(olderThanMs: number): Promise<string[]>;
}

/** At start-up: removes old leftovers of crashed publications and deletions; never fails the start. */
export async function cleanLeftovers(
  store: StagedStore,
  logger: Logger,
  what = 'the model store',
): Promise<void> {
  try {
    const removed = await store.cleanStaging(LEFTOVER_AFTER_MS);
    if (removed.length > 0)
      logger.info({ removed }, `removed what crashed writes or deletions left in ${what}`);
  } catch (err) {
    logger.warn({ err }, `could not clean leftovers from ${what}`);
  }
}

/**
 * Renames a finished staging dir to `target` under `root`, making it visible whole, and makes the
 * rename durable (readers may act on it from here). False when something already occupies
 * `target`, so the caller picks another name: rename(2) replaces at most an empty directory.
 */
export async function promoteStaged(root: string, staging: string, target: string): Promise<boolean> {
  try {
    await rename(staging, target);
  } catch (err) {
    if (isErrno(err, 'ENOTEMPTY') || isErrno(err, 'EEXIST') || isErrno(err, 'ENOTDIR')) return false;
    throw err;
  }
  await syncDirectory(root);
  return true;
}

/**
 * Moves `entry` into the store's trash under a fresh name starting with `label`; null when there
 * is no such entry. The caller deletes it (or renames it back).
 */
export async function moveToTrash(root: string, entry: string, label: string): Promise<string | null> {
  const trash = path.join(root, TRASH);
  await mkdir(trash, { recursive: true });
  const target = path.join(trash, `${label}-${randomUUID()}`);
  try {
    await rename(entry, target);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
  // A rename keeps the entry's old mtime: stamp it, or cleanStaging() elsewhere would take a
  // deletion in progress for a crash's leftover. (A crash right here leaves one; it is.)
  const now = new Date();
  await utimes(target, now, now).catch(() => undefined);
  return target;
}

/**
 * Deletes what crashed writers (staging dirs) and crashed removals (trash dirs) left behind under
 * `root`, if untouched for `olderThanMs`. Returns the deleted paths.
 */
export async function removeLeftovers(root: string, olderThanMs: number): Promise<string[]> {
  if (!(olderThanMs >= 0)) throw new RangeError(`olderThanMs must be >= 0, got ${olderThanMs}`);
  const cutoff = Date.now() - olderThanMs;
  const removed: string[] = [];
  for (const entry of await staleEntries(path.join(root, STAGING), cutoff)) {
    // Moved out first, so a writer renaming it at this moment gets either all of it or ENOENT.
    const trashed = await moveToTrash(root, entry, 'staging');
    if (!trashed) continue;
    await rm(trashed, { recursive: true, force: true });
    removed.push(entry);
  }
  for (const entry of await staleEntries(path.join(root, TRASH), cutoff)) {
    await rm(entry, { recursive: true, force: true });
    removed.push(entry);
  }
  return removed;
}

/** The names in `dir`; none when it does not exist (yet). */
export async function entryNames(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
}

async function staleEntries(dir: string, cutoff: number): Promise<string[]> {
  const stale: string[] = [];
  for (const name of await entryNames(dir)) {
    const entry = path.join(dir, name);
    const stats = await lstat(entry).catch((err: unknown) => {
      if (isErrno(err, 'ENOENT')) return null;
      throw err;
    });
    if (stats && stats.mtimeMs < cutoff) stale.push(entry);
  }
  return stale;
}
