import type { Redis } from 'ioredis';

/** Hands out model version numbers, each once. */
export interface VersionClaims {
  /**
   * A number above `floor` (the highest the store shows as taken) and above every number handed
   * out before, never handed out again.
   */
  claim(floor: number): Promise<number>;
}

// One script, so two publishers can never read the same counter: Redis runs it alone.
const CLAIM = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if floor > current then current = floor end
current = current + 1
redis.call('SET', KEYS[1], current)
return current`;

/**
 * Version numbers from a counter in Redis, the coordination point every process already shares.
 * The floor the store passes in (its highest claim marker or version) keeps numbers from going
 * back if Redis loses the counter (a restart without persistence).
 */
export class RedisVersionClaims implements VersionClaims {
  constructor(
    private readonly redis: () => Redis,
    private readonly key: string,
  ) {}

  async claim(floor: number): Promise<number> {
    if (!Number.isSafeInteger(floor) || floor < 0) throw new RangeError(`floor must be >= 0, got ${floor}`);
    return Number(await this.redis().eval(CLAIM, 1, this.key, String(floor)));
  }
}
