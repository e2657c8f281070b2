import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { jobIdSchema, jobProgressSchema, TRAINING_QUEUE, type JobProgress } from './job-schema.js';

export type JobEvent = { type: 'progress'; data: JobProgress } | { type: 'completed' | 'failed' };

export interface JobEventsOptions {
  /** Redis connection trouble (ioredis reconnects meanwhile, and the stream resumes); @default ignored */
  onError?: (error: Error) => void;
  /** An entry of a kind we follow that does not parse: logged and skipped; @default ignored */
  onInvalid?: (problem: string) => void;
}

const json = z.string().transform((text, ctx) => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    ctx.addIssue({ code: 'custom', message: 'is not JSON' });
    return z.NEVER;
  }
});

// The kinds of entry we pass on; BullMQ writes many more (added, active, ...), which we skip.
const entrySchema = z.discriminatedUnion('event', [
  z.object({ event: z.literal('progress'), jobId: jobIdSchema, data: json.pipe(jobProgressSchema) }),
  z.object({ event: z.enum(['completed', 'failed']), jobId: jobIdSchema }),
]);
const FOLLOWED = new Set(['progress', 'completed', 'failed']);

/** How long one XREAD waits; a closing process interrupts it. */
const BLOCK_MS = 10_000;
const RETRY_MS = 1_000;

/**
 * The queue's event stream (the Redis stream BullMQ writes, `<prefix>:training:events`), fanned
 * out by job id, so a hundred clients watching jobs cost one Redis connection, not a hundred.
 *
 * Read here rather than through BullMQ's QueueEvents: that one JSON.parses every progress entry
 * in its read loop, so a single malformed entry ends the loop and every event stream of the
 * process with it. Each entry is checked here; a bad one is reported and skipped.
 */
export class JobEvents {
  private readonly connection: Redis;
  private readonly emitter = new EventEmitter();
  private readonly key: string;
  private readonly options: JobEventsOptions;
  private closing = false;
  private readonly started: Promise<string>;
  private readonly loop: Promise<void>;

  constructor(connection: Redis, prefix: string, options: JobEventsOptions = {}) {
    this.emitter.setMaxListeners(0);
    this.options = options;
    this.key = `${prefix}:${TRAINING_QUEUE}:events`;
    // Blocking reads need a connection of their own, that waits out Redis restarts.
    this.connection = connection.duplicate({ maxRetriesPerRequest: null });
    this.connection.on('error', (err: Error) => options.onError?.(err));
    this.started = this.lastId();
    this.started.catch(() => undefined);
    this.loop = this.started.then((id) => this.follow(id)).catch(() => undefined);
  }

  /** Resolves once events from now on will be seen. */
  async ready(): Promise<void> {
    await this.started;
  }

  /** Calls `listener` with each event of one job; returns the unsubscribe function. */
  watch(jobId: string, listener: (event: JobEvent) => void): () => void {
    this.emitter.on(jobId, listener);
    return () => this.emitter.off(jobId, listener);
  }

  async close(): Promise<void> {
    this.closing = true;
    // Ends the blocking read in flight.
    this.connection.disconnect();
    await this.loop;
  }

  /** The newest entry's id: reading from it (rather than '$' on each call) misses nothing between reads. */
  private async lastId(): Promise<string> {
    const [last] = await this.connection.xrevrange(this.key, '+', '-', 'COUNT', 1);
    return last?.[0] ?? '0-0';
  }

  private async follow(from: string): Promise<void> {
    let id = from;
    while (!this.closing) {
      let reply: [string, [string, string[]][]][] | null;
      try {
        reply = await this.connection.xread('BLOCK', BLOCK_MS, 'STREAMS', this.key, id);
      } catch (err) {
        if (this.closing) return;
        this.options.onError?.(err instanceof Error ? err : new Error(String(err)));
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
        continue;
      }
      for (const [, entries] of reply ?? []) {
        for (const [entryId, fields] of entries) {
          id = entryId;
          this.dispatch(entryId, fields);
        }
      }
    }
  }

  private dispatch(entryId: string, fields: string[]): void {
    const raw: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) raw[fields[i]!] = fields[i + 1]!;
    if (!FOLLOWED.has(raw.event ?? '')) return;
    const parsed = entrySchema.safeParse(raw);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      this.options.onInvalid?.(`${this.key} entry ${entryId} (${raw.event}) skipped: ${problems}`);
      return;
    }
    const entry = parsed.data;
    const event: JobEvent =
      entry.event === 'progress' ? { type: 'progress', data: entry.data } : { type: entry.event };
    this.emitter.emit(entry.jobId, event);
  }
}
