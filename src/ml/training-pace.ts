import type { TrainParams } from './train-params.js';
import type { TrainProgress } from './training-report-schema.js';

/** Running sums of one epoch's batches so far. */
export interface EpochTotals {
  lossSum: number;
  correct: number;
  seen: number;
  lastBatchLoss: number;
}

export interface TrainingPaceOptions {
  params: TrainParams;
  /** Images in the training set, and the batches they make per epoch. */
  images: number;
  batches: number;
  /** Epochs a resumed run had finished before this call. */
  epochsDone: number;
  /** Least time between two batch progress events. */
  intervalMs: number;
}

/**
 * The clock of one train() call: counts the batches it has run, to tell how far along the run is,
 * how fast it goes and when the next batch progress event is due.
 */
export class TrainingPace {
  readonly batches: number;
  private readonly batchesToRun: number;
  private readonly started = performance.now();
  private batchesRun = 0;
  private lastEvent = 0;

  constructor(private readonly options: TrainingPaceOptions) {
    this.batches = options.batches;
    this.batchesToRun = (options.params.epochs - options.epochsDone) * options.batches;
  }

  batchDone(): void {
    this.batchesRun++;
  }

  /** Whether a batch progress event is due at `now`: `intervalMs` since the last event. */
  batchEventDue(now: number): boolean {
    return now - this.lastEvent >= this.options.intervalMs;
  }

  /** The event for `batch` batches of `epoch` done; the next batch event is due `intervalMs` from `now`. */
  progress(
    kind: TrainProgress['kind'],
    epoch: number,
    batch: number,
    totals: EpochTotals,
    now: number,
  ): TrainProgress {
    this.lastEvent = now;
    const elapsedSeconds = (now - this.started) / 1000;
    const perBatch = this.batchesRun ? elapsedSeconds / this.batchesRun : 0;
    const done = (epoch - 1) * this.batches + batch;
    return {
      kind,
      epoch,
      epochs: this.options.params.epochs,
      batch,
      batches: this.batches,
      percent: (100 * done) / (this.options.params.epochs * this.batches),
      loss: totals.lossSum / totals.seen,
      accuracy: totals.correct / totals.seen,
      imagesPerSecond: this.batchesRun ? this.trainedImages() / elapsedSeconds : 0,
      elapsedSeconds,
      etaSeconds: Math.max(0, this.batchesToRun - this.batchesRun) * perBatch,
    };
  }

  /** Time since the run started, and the images trained per second of it. */
  total(): { seconds: number; imagesPerSecond: number } {
    const seconds = (performance.now() - this.started) / 1000;
    return { seconds, imagesPerSecond: this.trainedImages() / seconds };
  }

  /** A run starts at an epoch boundary, and only an epoch's last batch can be short. */
  private trainedImages(): number {
    const epochs = Math.floor(this.batchesRun / this.batches);
    return epochs * this.options.images + (this.batchesRun % this.batches) * this.options.params.batchSize;
  }
}
