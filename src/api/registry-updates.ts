import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { subscribeChannel } from '../redis-channel.js';
import { subscribeVersions } from '../registry/announcer.js';
import { ALIAS_CHANNEL, aliasEventSchema, type ModelAliases } from '../registry/model-aliases.js';
import type { Predictor } from './predictor.js';

export interface RegistryUpdatesOptions {
  /** Subscriptions open duplicates of it; it stays the caller's. */
  redis: Redis;
  prefix: string;
  predictor: Predictor;
  aliases: ModelAliases;
  logger: Logger;
  /** How often to look at the store and the aliases for what announcements missed (MODEL_POLL_MS). */
  pollMs: number;
  /**
   * Told of each version announced published or deleted, and of a newer one the poll found (the
   * feedback evaluation measures new versions and drops deleted ones).
   */
  onVersionsChanged?: () => void;
}

/**
 * Keeps an API process's model and alias copy current: announcements of published and deleted
 * versions and of alias changes as they come, and a poll for what was missed while Redis was away.
 * Every message is checked; a malformed one is logged and dropped, so no publisher can take the
 * API down. Loads the aliases before it returns.
 */
export async function followRegistry(options: RegistryUpdatesOptions): Promise<{ close(): Promise<void> }> {
  const { redis, prefix, predictor, aliases, logger } = options;
  const storeFailed = (err: unknown) => logger.warn({ err }, 'could not check the model store');
  const aliasesFailed = (err: unknown) => logger.warn({ err }, 'could not reload the aliases');
  const dropped = (problem: string) => logger.warn({ problem }, 'dropped a malformed pub/sub message');
  await aliases.refresh();
  const changed = options.onVersionsChanged ?? (() => undefined);
  const versions = await subscribeVersions(
    redis,
    prefix,
    (event) => {
      changed();
      return predictor.onVersionPublished(event.version).catch(storeFailed);
    },
    {
      onDeleted: (event) => {
        changed();
        return predictor.evict(event.version).catch(storeFailed);
      },
      onInvalid: dropped,
      onError: (err) => logger.warn({ err }, 'model announcements: Redis connection trouble'),
    },
  );
  const aliasChanges = await subscribeChannel(redis, ALIAS_CHANNEL(prefix), aliasEventSchema, {
    onMessage: ({ version }) => {
      aliases.refresh().catch(aliasesFailed);
      // An alias on an old version keeps (or gets) that version's feedback figure.
      changed();
      // Loaded before the first request for it.
      if (version) predictor.preload(version).catch(storeFailed);
    },
    onInvalid: dropped,
    onError: (err) => logger.warn({ err }, 'alias updates: Redis connection trouble'),
  });
  const poll = setInterval(() => {
    const served = predictor.version;
    // A version whose announcement was missed is news to the feedback evaluation too.
    predictor.refresh().then(() => predictor.version !== served && changed(), storeFailed);
    aliases.refresh().catch(aliasesFailed);
  }, options.pollMs);
  return {
    async close() {
      clearInterval(poll);
      await versions.close();
      await aliasChanges.close();
    },
  };
}
