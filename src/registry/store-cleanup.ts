import type { Logger } from 'pino';
import type { ModelStore } from './model-store.js';

/**
 * Untouched this long, a staging or trash entry is what a crash left behind. A publication
 * writes its staging dir in seconds, and one that waits longer for its claim (Redis away) has
 * lost its job lock well before this, so it would be refused anyway. Age, not a pid marker: the
 * store is shared by processes on several machines, and a pid says nothing about another host.
 */
export const LEFTOVER_AFTER_MS = 60 * 60 * 1000;

/** At start-up: removes old leftovers of crashed publications and deletions; never fails the start. */
export async function cleanLeftovers(store: ModelStore, logger: Logger): Promise<void> {
  try {
    const removed = await store.cleanStaging(LEFTOVER_AFTER_MS);
    if (removed.length > 0)
      logger.info({ removed }, 'removed what crashed publications or deletions left in the model store');
  } catch (err) {
    logger.warn({ err }, 'could not clean leftovers from the model store');
  }
}
