export interface MicroBatcherOptions {
  /** Most requests run together; a full batch runs at once. */
  maxBatch: number;
  /** Longest a request waits for others after the first of its batch arrived; 0 = same tick only. */
  maxDelayMs: number;
}

interface Pending<I, O> {
  input: I;
  resolve: (output: O) => void;
  reject: (error: unknown) => void;
}

/**
 * Gathers concurrent single requests into one batch, as TensorFlow Serving's and Triton's dynamic
 * batching do: one model call for many callers, each of whom gets its own answer. `run` gets the
 * inputs in arrival order and must return one output per input, in that order.
 */
export class MicroBatcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;

  constructor(
    private readonly run: (inputs: I[]) => O[] | Promise<O[]>,
    private readonly options: MicroBatcherOptions,
  ) {
    if (!(options.maxBatch >= 1))
      throw new RangeError(`maxBatch must be at least 1, got ${options.maxBatch}`);
    if (!(options.maxDelayMs >= 0))
      throw new RangeError(`maxDelayMs must be >= 0, got ${options.maxDelayMs}`);
  }

  submit(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (this.queue.length >= this.options.maxBatch) this.flush();
      else if (!this.timer) {
        this.timer =
          this.options.maxDelayMs > 0
            ? setTimeout(() => this.flush(), this.options.maxDelayMs)
            : setImmediate(() => this.flush());
      }
    });
  }

  /** Requests waiting for their batch to run. */
  get waiting(): number {
    return this.queue.length;
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
      this.timer = undefined;
    }
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      void this.execute(batch);
    }
  }

  private async execute(batch: Pending<I, O>[]): Promise<void> {
    try {
      const outputs = await this.run(batch.map((p) => p.input));
      if (outputs.length !== batch.length) {
        throw new Error(`batch function returned ${outputs.length} outputs for ${batch.length} inputs`);
      }
      batch.forEach((p, i) => p.resolve(outputs[i]!));
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  }
}
