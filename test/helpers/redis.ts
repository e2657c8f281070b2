import { Redis } from 'ioredis';
import { afterAll } from 'vitest';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix no other test run shares, so runs never see each other's queues. */
export function uniquePrefix(name: string): string {
  return `test-${name}-${process.pid}-${Date.now()}`;
}

export function connect(): Redis {
  // BullMQ workers need blocking commands that never give up retrying.
  return new Redis(REDIS_URL, { maxRetriesPerRequest: null });
}

/** Removes every key a test run made under its prefix. */
export async function removePrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/**
 * A connection and a key prefix of the calling describe block's own (or the file's): after its
 * last test, the prefix's keys are removed and the connection closed.
 */
export function useRedisPrefix(name: string): { redis: Redis; prefix: string } {
  const prefix = uniquePrefix(name);
  const redis = connect();
  afterAll(async () => {
    await removePrefix(redis, prefix);
    await redis.quit();
  });
  return { redis, prefix };
}
