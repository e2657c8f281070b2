import { BATCH_HISTORY_MAX, type BatchPoint } from './job-schema.js';

/** Where `batch` batches of `epoch` (1-based) put a run: x in epochs done, figures rounded for the wire. */
export function batchPoint(progress: {
  epoch: number;
  batch: number;
  batches: number;
  loss: number;
  accuracy: number;
}): BatchPoint {
  const within = progress.batches > 0 ? progress.batch / progress.batches : 0;
  return {
    // A ten-thousandth of an epoch is finer than any chart draws; five digits are plenty for a curve.
    x: Math.round((progress.epoch - 1 + within) * 10_000) / 10_000,
    loss: Number(progress.loss.toPrecision(5)),
    accuracy: Number(progress.accuracy.toPrecision(5)),
  };
}

export interface BatchHistoryOptions {
  /** The curve of the job's earlier attempts (its last progress); @default none */
  earlier?: readonly BatchPoint[];
  /**
   * Epochs the run resumes after (its checkpoint's): earlier points past them are dropped, since
   * those batches are trained again. @default 0
   */
  epochsDone?: number;
  /** @default BATCH_HISTORY_MAX */
  max?: number;
}

/**
 * A job's per-batch curve from its start, kept in its progress so that a page opened (or
 * reloaded) late draws the whole run. Bounded however long the job trains: a point is kept once x
 * has moved on by epochs / (max - 1) since the last one kept, so at most `max` points lie over the
 * run, evenly spread. Every progress report goes to Redis and to each watching client with the
 * curve in it, so it stays small: 100 points are under 5 KB of JSON.
 */
export class BatchHistory {
  private readonly kept: BatchPoint[];
  private readonly spacing: number;
  private readonly max: number;

  constructor(epochs: number, options: BatchHistoryOptions = {}) {
    this.max = options.max ?? BATCH_HISTORY_MAX;
    this.spacing = epochs / Math.max(1, this.max - 1);
    const done = options.epochsDone ?? 0;
    this.kept = (options.earlier ?? []).filter((p) => p.x <= done).slice(0, this.max);
  }

  /** Keeps `point` if it is far enough on from the last one kept; answers whether it did. */
  add(point: BatchPoint): boolean {
    // A run that diverged has NaN figures, which JSON cannot carry: the curve just stops growing.
    if (!Number.isFinite(point.loss) || !Number.isFinite(point.accuracy)) return false;
    const last = this.kept.at(-1);
    if (last && point.x < last.x + this.spacing) return false;
    if (this.kept.length >= this.max) return false;
    this.kept.push(point);
    return true;
  }

  get points(): BatchPoint[] {
    return [...this.kept];
  }
}
