import type { Redis } from 'ioredis';
import { z } from 'zod';
import { serialRefresh } from '../serial-refresh.js';
import { publishDeletion } from './announcer.js';
import { modelVersionSchema } from './model-store.js';

/** Alias names: a lower-case word, never a number (so `?version=` can take either). */
export const aliasNameSchema = z
  .string()
  .regex(
    /^[a-z][a-z0-9_-]{0,62}$/,
    'an alias is a lower-case word: a letter, then letters, digits, _ or - (at most 63)',
  );

export const ALIAS_CHANNEL = (prefix: string) => `${prefix}:aliases`;

/** What is announced on ALIAS_CHANNEL when an alias moves (`version`) or is removed (null). */
export const aliasEventSchema = z.object({ name: aliasNameSchema, version: modelVersionSchema.nullable() });
export type AliasEvent = z.infer<typeof aliasEventSchema>;

// Checked and changed in one script, so an alias can never be pointed at a version that a
// concurrent DELETE has marked (the other half is MARK_DELETED). Published from the script, so
// announcements go out in the order the changes were made.
const SET = `
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`;

const MARK_DELETED = `
local names = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[1] then table.insert(names, all[i]) end
end
if #names == 0 then redis.call('SADD', KEYS[2], ARGV[1]) end
return names`;

/**
 * Named pointers to model versions (`production` -> 7), shared by every API replica through
 * Redis, and the marks of versions being deleted. Each change is announced so replicas can load
 * the version before it is asked for.
 *
 * `get` answers from this process's own copy, so `/predict?version=<alias>` never waits on Redis
 * (it keeps answering while Redis is away). The copy is loaded on first use and by `refresh()`,
 * which the server calls on each announcement and on a timer; this process's own changes are in
 * it before they return.
 */
export class ModelAliases {
  private copy: Map<string, number> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private get key(): string {
    return `${this.prefix}:aliases`;
  }

  /** Versions marked deleted. Numbers are never reused, so a mark stays (a few bytes per deletion). */
  private get deletedKey(): string {
    return `${this.prefix}:models:deleted`;
  }

  /** Every alias, read from Redis. */
  async all(): Promise<Record<string, number>> {
    const raw = await this.redis.hgetall(this.key);
    return Object.fromEntries(Object.entries(raw).map(([name, version]) => [name, Number(version)]));
  }

  /** The version an alias names, from this process's copy (loaded from Redis on first use only). */
  async get(name: string): Promise<number | null> {
    if (!this.copy) await this.refresh();
    return this.copy?.get(name) ?? null;
  }

  /** Reloads the copy from Redis; calls made during a reload share one more after it. */
  readonly refresh = serialRefresh(async () => {
    this.copy = new Map(Object.entries(await this.all()));
  });

  /** False when `version` has been marked deleted: the alias is not set. */
  async set(name: string, version: number): Promise<boolean> {
    const event = JSON.stringify(aliasEventSchema.parse({ name, version }));
    const set = await this.redis.eval(
      SET,
      2,
      this.key,
      this.deletedKey,
      name,
      String(version),
      ALIAS_CHANNEL(this.prefix),
      event,
    );
    await this.refresh();
    return set === 1;
  }

  async remove(name: string): Promise<boolean> {
    const removed = (await this.redis.hdel(this.key, name)) > 0;
    if (removed) {
      const event: AliasEvent = { name, version: null };
      await this.redis.publish(ALIAS_CHANNEL(this.prefix), JSON.stringify(event));
    }
    await this.refresh();
    return removed;
  }

  /**
   * Marks `version` as being deleted, so no alias can be pointed at it from now on; unless an
   * alias points at it already: then nothing is marked and their names are returned.
   */
  async markDeleted(version: number): Promise<string[]> {
    return (await this.redis.eval(MARK_DELETED, 2, this.key, this.deletedKey, String(version))) as string[];
  }

  /** Takes back the mark of a version that turned out not to exist (the DELETE was a 404). */
  async unmarkDeleted(version: number): Promise<void> {
    await this.redis.srem(this.deletedKey, String(version));
  }

  /** Tells every API replica that `version` is gone, so those holding it loaded drop it. */
  async announceDeleted(version: number): Promise<void> {
    await publishDeletion(this.redis, this.prefix, version);
  }
}
