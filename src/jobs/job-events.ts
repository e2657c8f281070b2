import { EventEmitter } from 'node:events';
import { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { TRAINING_QUEUE } from './job-schema.js';

export type JobEvent = { type: 'progress'; data: unknown } | { type: 'completed' | 'failed'; data: unknown };

/**
 * One BullMQ QueueEvents stream per process, fanned out by job id, so a hundred clients watching
 * jobs cost one Redis connection, not a hundred.
 */
export class JobEvents {
  private readonly events: QueueEvents;
  private readonly emitter = new EventEmitter();

  constructor(connection: Redis, prefix: string, onError: (error: Error) => void = () => undefined) {
    this.emitter.setMaxListeners(0);
    const own = connection.duplicate({ maxRetriesPerRequest: null });
    // QueueEvents does not listen on a connection it is given; ioredis prints what nobody hears.
    own.on('error', onError);
    this.events = new QueueEvents(TRAINING_QUEUE, { connection: own, prefix });
    // Connection trouble is reported, not thrown: ioredis reconnects and the stream resumes.
    this.events.on('error', onError);
    this.events.on('progress', ({ jobId, data }) => this.emitter.emit(jobId, { type: 'progress', data }));
    this.events.on('completed', ({ jobId, returnvalue }) =>
      this.emitter.emit(jobId, { type: 'completed', data: returnvalue }),
    );
    this.events.on('failed', ({ jobId, failedReason }) =>
      this.emitter.emit(jobId, { type: 'failed', data: failedReason }),
    );
  }

  ready(): Promise<void> {
    return this.events.waitUntilReady().then(() => undefined);
  }

  /** Calls `listener` with each event of one job; returns the unsubscribe function. */
  watch(jobId: string, listener: (event: JobEvent) => void): () => void {
    this.emitter.on(jobId, listener);
    return () => this.emitter.off(jobId, listener);
  }

  async close(): Promise<void> {
    await this.events.close();
  }
}
