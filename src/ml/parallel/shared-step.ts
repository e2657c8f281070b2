import type { BatchMaker } from '../batches.js';
import { withBatch } from '../step-runner.js';
import type { StepStats, TrainStepper } from '../train-step.js';

// Slots of the control array.
const SEQ = 0; // bumped by the leader for each command
const ARRIVED = 1; // replicas that finished their slice, counted over the whole run
const COMMAND = 2;
const COUNT = 3; // images in the batch
const STEP = 4;
const HAS_SHIFTS = 5;
const FAILED = 6;
const CONTROL_SLOTS = 8;

export const STEP_COMMAND = 1;
export const STOP_COMMAND = 2;

/** The SharedArrayBuffers that data-parallel replicas step through; sent to each replica once. */
export interface SharedStepBuffers {
  control: SharedArrayBuffer;
  indices: SharedArrayBuffer;
  shifts: SharedArrayBuffer;
  gradients: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  replicas: number;
  gradientSize: number;
}

export function allocateSharedStep(
  replicas: number,
  gradientSize: number,
  maxBatch: number,
): SharedStepBuffers {
  return {
    control: new SharedArrayBuffer(CONTROL_SLOTS * 4),
    indices: new SharedArrayBuffer(maxBatch * 4),
    shifts: new SharedArrayBuffer(2 * maxBatch),
    // Two generations (even and odd steps): a replica that is ahead writes step k+1's gradient
    // while a slower one may still be summing step k's.
    gradients: new SharedArrayBuffer(2 * replicas * gradientSize * 4),
    stats: new SharedArrayBuffer(2 * replicas * 2 * 8),
    replicas,
    gradientSize,
  };
}

/** The images [first, end) of a batch of `count` that replica `replica` of `replicas` trains on. */
export function sliceOf(replica: number, replicas: number, count: number): [number, number] {
  return [Math.floor((replica * count) / replicas), Math.floor(((replica + 1) * count) / replicas)];
}

/**
 * One replica's view of the shared step. Every replica (the leader is replica 0) runs the same
 * sequence: `compute` its slice of the batch the leader posted, then, once all have arrived,
 * `finish`: sum the slices' gradients in replica order, divide by the batch size and apply the
 * update. The same floats in the same order give every replica the same weights, so weights
 * never travel.
 */
export class SharedStep {
  readonly control: Int32Array;
  readonly indices: Uint32Array;
  readonly shifts: Int8Array;
  private readonly gradients: Float32Array;
  private readonly stats: Float64Array;
  private readonly mean: Float32Array;
  /** Commands this replica has taken part in: its barrier waits for replicas * (syncs + 1). */
  private syncs = 0;
  private pending: { count: number; parity: number; step: number } | undefined;

  constructor(
    readonly buffers: SharedStepBuffers,
    readonly replica: number,
    private readonly stepper: TrainStepper,
    private readonly maker: BatchMaker,
  ) {
    if (stepper.gradientSize !== buffers.gradientSize)
      throw new Error(
        `replica ${replica} has ${stepper.gradientSize} gradient floats, the leader ${buffers.gradientSize}`,
      );
    this.control = new Int32Array(buffers.control);
    this.indices = new Uint32Array(buffers.indices);
    this.shifts = new Int8Array(buffers.shifts);
    this.gradients = new Float32Array(buffers.gradients);
    this.stats = new Float64Array(buffers.stats);
    this.mean = new Float32Array(buffers.gradientSize);
  }

  get command(): number {
    return Atomics.load(this.control, COMMAND);
  }

  /** Leader only: posts the batch at positions [start, end) of `order` and wakes the replicas. */
  post(order: Uint32Array, shifts: Int8Array | undefined, start: number, end: number, step: number): void {
    const count = end - start;
    for (let i = 0; i < count; i++) this.indices[i] = order[start + i]!;
    if (shifts) this.shifts.set(shifts.subarray(2 * start, 2 * end));
    this.control[COUNT] = count;
    this.control[STEP] = step;
    this.control[HAS_SHIFTS] = shifts ? 1 : 0;
    this.control[COMMAND] = STEP_COMMAND;
    Atomics.add(this.control, SEQ, 1);
    Atomics.notify(this.control, SEQ);
  }

  /** Leader only: tells the replicas to leave their loops. */
  stop(): void {
    this.control[COMMAND] = STOP_COMMAND;
    Atomics.add(this.control, SEQ, 1);
    Atomics.notify(this.control, SEQ);
  }

  /** Trains this replica's slice of the posted batch and counts itself arrived. */
  compute(): void {
    const count = this.control[COUNT]!;
    const step = this.control[STEP]!;
    const parity = this.syncs % 2;
    const [first, end] = sliceOf(this.replica, this.buffers.replicas, count);
    const size = this.buffers.gradientSize;
    const region = this.gradients.subarray(
      (parity * this.buffers.replicas + this.replica) * size,
      (parity * this.buffers.replicas + this.replica + 1) * size,
    );
    let stats: StepStats = { lossSum: 0, hits: 0 };
    if (end > first) {
      const shifts = this.control[HAS_SHIFTS] ? this.shifts : undefined;
      const plan = { order: this.indices, start: first, end, ...(shifts ? { shifts } : {}) };
      stats = withBatch(this.maker, plan, (batch) =>
        this.stepper.gradients(batch, region, { step, replica: this.replica }),
      );
    } else {
      region.fill(0);
    }
    const at = 2 * (parity * this.buffers.replicas + this.replica);
    this.stats[at] = stats.lossSum;
    this.stats[at + 1] = stats.hits;
    this.pending = { count, parity, step };
    if (Atomics.add(this.control, ARRIVED, 1) + 1 >= this.arrivalTarget) {
      Atomics.notify(this.control, ARRIVED);
    }
  }

  /** Arrivals that mean every replica has finished the current command's slice. */
  get arrivalTarget(): number {
    return this.buffers.replicas * (this.syncs + 1);
  }

  /** After every replica arrived: the mean gradient's update, and the whole batch's stats. */
  finish(): StepStats {
    const { count, parity, step } = this.pending!;
    this.pending = undefined;
    const { replicas, gradientSize: size } = this.buffers;
    const base = parity * replicas * size;
    const mean = this.mean;
    mean.set(this.gradients.subarray(base, base + size));
    for (let r = 1; r < replicas; r++) {
      const from = base + r * size;
      for (let i = 0; i < size; i++) mean[i] = mean[i]! + this.gradients[from + i]!;
    }
    for (let i = 0; i < size; i++) mean[i] = mean[i]! / count;
    this.stepper.apply(mean, step);
    const total: StepStats = { lossSum: 0, hits: 0 };
    for (let r = 0; r < replicas; r++) {
      const at = 2 * (parity * replicas + r);
      total.lossSum += this.stats[at]!;
      total.hits += this.stats[at + 1]!;
    }
    this.syncs++;
    return total;
  }

  /** A replica that failed says so here, so no one waits for it forever. */
  fail(): void {
    Atomics.store(this.control, FAILED, 1);
    Atomics.notify(this.control, ARRIVED);
    Atomics.notify(this.control, SEQ);
  }

  get failed(): boolean {
    return Atomics.load(this.control, FAILED) !== 0;
  }

  /** Blocks (a replica thread has nothing else to do) until every replica arrived. */
  waitForAll(): void {
    for (;;) {
      const arrived = Atomics.load(this.control, ARRIVED);
      if (arrived >= this.arrivalTarget) return;
      if (this.failed) throw new Error('another replica failed');
      Atomics.wait(this.control, ARRIVED, arrived, 1000);
    }
  }

  /** The leader's wait: on the event loop, so aborts, messages and exits still come in. */
  async waitForAllAsync(): Promise<void> {
    for (;;) {
      const arrived = Atomics.load(this.control, ARRIVED);
      if (arrived >= this.arrivalTarget) return;
      if (this.failed) throw new Error('a training replica failed');
      const wait = Atomics.waitAsync(this.control, ARRIVED, arrived, 1000);
      if (wait.async) await wait.value;
    }
  }

  /** Blocks until the leader posts a command after `seen`; returns the new sequence number. */
  waitForCommand(seen: number): number {
    for (;;) {
      const now = Atomics.load(this.control, SEQ);
      if (now !== seen) return now;
      if (this.failed) throw new Error('another replica failed');
      Atomics.wait(this.control, SEQ, seen, 1000);
    }
  }
}
