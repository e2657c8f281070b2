/** Every slot is taken and the line is full: the caller should come back later. */
export class QueueFullError extends Error {
  override name = 'QueueFullError';
}

export interface ConcurrencyLimitOptions {
  /** Tasks running at once. */
  concurrency: number;
  /** Tasks waiting for a slot; one more is refused with QueueFullError. */
  maxWaiting: number;
}

/**
 * A counting semaphore with a bounded line: at most `concurrency` tasks run, the next ones wait
 * in arrival order, and beyond `maxWaiting` of those a task is refused at once rather than
 * queued, so a flood costs memory for a short line only. A finishing task hands its slot to the
 * first in line directly, so nobody who arrives later can overtake it.
 */
export class ConcurrencyLimit {
  private running = 0;
  private readonly line: (() => void)[] = [];

  constructor(private readonly options: ConcurrencyLimitOptions) {
    if (!(Number.isInteger(options.concurrency) && options.concurrency >= 1))
      throw new RangeError(`concurrency must be an integer >= 1, got ${options.concurrency}`);
    if (!(Number.isInteger(options.maxWaiting) && options.maxWaiting >= 0))
      throw new RangeError(`maxWaiting must be an integer >= 0, got ${options.maxWaiting}`);
  }

  /** Tasks running now. */
  get active(): number {
    return this.running;
  }

  /** Tasks waiting for a slot now. */
  get waiting(): number {
    return this.line.length;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  private acquire(): Promise<void> {
    if (this.running < this.options.concurrency) {
      this.running++;
      return Promise.resolve();
    }
    if (this.line.length >= this.options.maxWaiting) {
      return Promise.reject(
        new QueueFullError(
          `${this.running} running and ${this.line.length} waiting, the most allowed (${this.options.maxWaiting})`,
        ),
      );
    }
    return new Promise((resolve) => this.line.push(resolve));
  }

  private release(): void {
    const next = this.line.shift();
    if (next) next();
    else this.running--;
  }
}
