import type { Redis } from 'ioredis';
import { z } from 'zod';

/** Alias names: a lower-case word, never a number (so `?version=` can take either). */
export const aliasNameSchema = z
  .string()
  .regex(
    /^[a-z][a-z0-9_-]{0,62}$/,
    'an alias is a lower-case word: a letter, then letters, digits, _ or - (at most 63)',
  );

export const ALIAS_CHANNEL = (prefix: string) => `${prefix}:aliases`;

/**
 * Named pointers to model versions (`production` -> 7), shared by every API replica through
 * Redis. Each change is announced so replicas can load the version before it is asked for.
 */
export class ModelAliases {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private get key(): string {
    return `${this.prefix}:aliases`;
  }

  async all(): Promise<Record<string, number>> {
    const raw = await this.redis.hgetall(this.key);
    return Object.fromEntries(Object.entries(raw).map(([name, version]) => [name, Number(version)]));
  }

  async get(name: string): Promise<number | null> {
    const version = await this.redis.hget(this.key, name);
    return version === null ? null : Number(version);
  }

  async set(name: string, version: number): Promise<void> {
    await this.redis.hset(this.key, aliasNameSchema.parse(name), String(version));
    await this.redis.publish(ALIAS_CHANNEL(this.prefix), JSON.stringify({ name, version }));
  }

  async remove(name: string): Promise<boolean> {
    const removed = (await this.redis.hdel(this.key, name)) > 0;
    if (removed)
      await this.redis.publish(ALIAS_CHANNEL(this.prefix), JSON.stringify({ name, version: null }));
    return removed;
  }

  /** Names pointing at `version`: a version that has any cannot be deleted. */
  async pointingAt(version: number): Promise<string[]> {
    return Object.entries(await this.all())
      .filter(([, v]) => v === version)
      .map(([name]) => name);
  }
}
