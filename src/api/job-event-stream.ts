import type { FastifyReply, FastifyRequest } from 'fastify';
import type { JobEvents } from '../jobs/job-events.js';
import type { JobView } from '../jobs/job-schema.js';
import type { TrainingJobs } from '../jobs/training-jobs.js';
import { StreamCaps, type StreamCapOptions } from './stream-caps.js';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

/** Under HTTP_IDLE_TIMEOUT_MS's least (20 s), so a quiet stream is never closed as idle. */
const HEARTBEAT_MS = 15_000;

/**
 * A job's Server-Sent Events (GET /jobs/:id/events): `state` (the job as it is), `progress`...,
 * then `end` (the job as it finished). Open streams never end on their own while a job runs;
 * `endAll()` ends them when the server closes, and browsers' EventSource reconnects (to another
 * replica, behind a load balancer).
 */
export class JobEventStreams {
  private readonly open = new Set<() => void>();
  private readonly caps: StreamCaps | undefined;

  constructor(
    private readonly jobs: TrainingJobs,
    private readonly jobEvents: JobEvents,
    /** Streams open at once per client address and in all; @default no cap */
    caps?: StreamCapOptions,
  ) {
    this.caps = caps && new StreamCaps(caps);
  }

  /** Streams job `first.id` on the request's own connection; a 429 DomainError past the caps. */
  async stream(request: FastifyRequest, reply: FastifyReply, first: JobView): Promise<void> {
    const { id } = first;
    const leave = this.caps?.admit(request.ip);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const send = (event: string, data: unknown) =>
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    let closed = false;
    const finish = (view: JobView) => {
      if (closed) return;
      closed = true;
      send('end', view);
      stop();
      res.end();
    };
    send('state', first);
    const unwatch = this.jobEvents.watch(id, (event) => {
      if (event.type === 'progress') send('progress', event.data);
      // The view after the fact carries the result or the reason, and whether it was a cancel.
      else void this.jobs.get(id).then((view) => view && finish(view));
    });
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    const endStream = () => {
      closed = true;
      stop();
      res.end();
    };
    this.open.add(endStream);
    const stop = () => {
      this.open.delete(endStream);
      unwatch();
      clearInterval(heartbeat);
      leave?.();
    };
    request.raw.on('close', () => {
      closed = true;
      stop();
    });
    // A client gone while the job was read: no 'close' is coming for it.
    if (res.destroyed) {
      closed = true;
      stop();
    }
    // The job may have finished between the first read and the subscription.
    const now = await this.jobs.get(id);
    if (now && TERMINAL.has(now.state)) finish(now);
  }

  /** Ends every open stream (the server is closing). */
  endAll(): void {
    for (const end of this.open) end();
  }
}
