import type { Redis } from 'ioredis';
import { subscribeChannel, type ChannelHandlers, type Subscription } from '../redis-channel.js';
import { jobIdSchema } from './job-schema.js';

/**
 * "Cancel job X" on Redis pub/sub, from the API to the workers: the one training X stops it within
 * a batch. Pub/sub forgets messages sent while a worker is disconnected, so a cancel is also
 * claimed as the job's ending (src/jobs/job-endings.ts), which a worker checks before it trains.
 */
export function cancelChannel(prefix: string): string {
  return `${prefix}:cancel`;
}

/** Resolves with the number of subscribers that received the cancel. */
export async function publishCancel(redis: Redis, prefix: string, jobId: string): Promise<number> {
  return redis.publish(cancelChannel(prefix), jobId);
}

/**
 * Calls `onCancel` with the job id of each cancel. The message is a bare job id; anything else is
 * dropped and told to `handlers.onInvalid`. Opens its own connection, from the URL or as a
 * duplicate of the given one.
 */
export async function subscribeCancels(
  connection: string | Redis,
  prefix: string,
  onCancel: (jobId: string) => void,
  handlers: Pick<ChannelHandlers<string>, 'onInvalid' | 'onError'> = {},
): Promise<Subscription> {
  return subscribeChannel(connection, cancelChannel(prefix), jobIdSchema, {
    ...handlers,
    decode: (text) => text,
    onMessage: onCancel,
  });
}
