import type { Redis } from 'ioredis';
import { z } from 'zod';
import { subscribeChannel, type Subscription } from '../redis-channel.js';
import { modelVersionSchema } from './model-store.js';

/**
 * "Version N is published" and "version N is deleted" on Redis pub/sub, so API processes can
 * hot-swap their model and stop serving deleted ones. Pub/sub forgets messages sent while a
 * subscriber is disconnected: a listener should also ask the store for its latest version on
 * start and after a reconnect.
 */

export const MODEL_CHANNEL = (prefix: string) => `${prefix}:models`;

export const versionEventSchema = z.object({ version: modelVersionSchema, createdAt: z.iso.datetime() });
export type VersionEvent = z.infer<typeof versionEventSchema>;

export const deletionEventSchema = z.object({ version: modelVersionSchema, deletedAt: z.iso.datetime() });
export type DeletionEvent = z.infer<typeof deletionEventSchema>;

const modelEventSchema = z.union([versionEventSchema, deletionEventSchema]);

export interface SubscribeOptions {
  /** A version was deleted: replicas that hold it loaded drop it. @default ignored */
  onDeleted?: (event: DeletionEvent) => void;
  /** A message on the channel that is not an announcement, dropped. @default ignored */
  onInvalid?: (problem: string) => void;
  /**
   * Connection errors of the subscriber; ioredis reconnects and resubscribes by itself meanwhile.
   * @default ignored
   */
  onError?: (error: Error) => void;
}

export type { Subscription };

/** Resolves with the number of subscribers that received the event. */
export async function publishVersion(redis: Redis, prefix: string, event: VersionEvent): Promise<number> {
  const checked = versionEventSchema.parse(event);
  return redis.publish(MODEL_CHANNEL(prefix), JSON.stringify(checked));
}

/** Tells the API replicas that `version` is gone from the store. */
export async function publishDeletion(redis: Redis, prefix: string, version: number): Promise<number> {
  const event = deletionEventSchema.parse({ version, deletedAt: new Date().toISOString() });
  return redis.publish(MODEL_CHANNEL(prefix), JSON.stringify(event));
}

/**
 * Calls `onVersion` for each well-formed announcement of a new version, `options.onDeleted` for
 * each deletion; anything else on the channel is dropped. Opens its own connection, from the URL
 * or as a duplicate of the given one. The callbacks must not throw.
 */
export async function subscribeVersions(
  connection: string | Redis,
  prefix: string,
  onVersion: (event: VersionEvent) => void,
  options: SubscribeOptions = {},
): Promise<Subscription> {
  return subscribeChannel(connection, MODEL_CHANNEL(prefix), modelEventSchema, {
    onMessage: (event) => {
      if ('deletedAt' in event) options.onDeleted?.(event);
      else onVersion(event);
    },
    ...(options.onInvalid ? { onInvalid: options.onInvalid } : {}),
    ...(options.onError ? { onError: options.onError } : {}),
  });
}
