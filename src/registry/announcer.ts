import { Redis } from 'ioredis';
import { z } from 'zod';
import { modelVersionSchema } from './model-store.js';

/**
 * "Version N is published" on Redis pub/sub, so API processes can hot-swap their model. Pub/sub
 * forgets messages sent while a subscriber is disconnected: a listener should also ask the store
 * for its latest version on start and after a reconnect.
 */

export const MODEL_CHANNEL = (prefix: string) => `${prefix}:models`;

export const versionEventSchema = z.object({ version: modelVersionSchema, createdAt: z.iso.datetime() });
export type VersionEvent = z.infer<typeof versionEventSchema>;

export interface SubscribeOptions {
  /**
   * Connection errors of the subscriber; ioredis reconnects and resubscribes by itself meanwhile.
   * @default ignored
   */
  onError?: (error: Error) => void;
}

export interface Subscription {
  close(): Promise<void>;
}

/** Resolves with the number of subscribers that received the event. */
export async function publishVersion(redis: Redis, prefix: string, event: VersionEvent): Promise<number> {
  const checked = versionEventSchema.parse(event);
  return redis.publish(MODEL_CHANNEL(prefix), JSON.stringify(checked));
}

/**
 * Calls `onVersion` for each well-formed announcement; anything else on the channel is ignored.
 * Opens its own connection (a subscribed connection can run no other command): from the URL, or
 * as a duplicate of the given one, which stays the caller's. `onVersion` must not throw.
 */
export async function subscribeVersions(
  connection: string | Redis,
  prefix: string,
  onVersion: (event: VersionEvent) => void,
  options: SubscribeOptions = {},
): Promise<Subscription> {
  const channel = MODEL_CHANNEL(prefix);
  const subscriber = typeof connection === 'string' ? new Redis(connection) : connection.duplicate();
  // Without a listener ioredis prints every connection error to the console.
  subscriber.on('error', options.onError ?? (() => undefined));
  subscriber.on('message', (from: string, message: string) => {
    if (from !== channel) return;
    const event = parseEvent(message);
    if (event) onVersion(event);
  });
  try {
    await subscriber.subscribe(channel);
  } catch (err) {
    subscriber.disconnect();
    throw err;
  }
  return {
    // quit() waits for pending replies; when the connection is already gone it just disconnects.
    close: async () => {
      await subscriber.quit().catch(() => subscriber.disconnect());
    },
  };
}

function parseEvent(message: string): VersionEvent | null {
  let json: unknown;
  try {
    json = JSON.parse(message);
  } catch {
    return null;
  }
  const parsed = versionEventSchema.safeParse(json);
  return parsed.success ? parsed.data : null;
}
