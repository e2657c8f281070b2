import type { EpochRecord, JobProgress } from '../../../src/jobs/job-schema.js';
import { formatDuration, formatRate } from './format.js';

/** A point of the per-batch curves: x in epochs (1.5 = half-way through epoch 2). */
export interface BatchPoint {
  x: number;
  loss: number;
  accuracy: number;
}

export function batchPoint(
  progress: Pick<JobProgress, 'epoch' | 'batch' | 'batches' | 'loss' | 'accuracy'>,
): BatchPoint {
  const within = progress.batches > 0 ? progress.batch / progress.batches : 0;
  return { x: progress.epoch - 1 + within, loss: progress.loss, accuracy: progress.accuracy };
}

/**
 * Seconds left. The worker's estimate counts training batches only; evaluating the validation
 * split at each epoch end and the test set at the end take time too, so while at least one epoch
 * is done the page uses the epochs' measured wall time instead when it is larger.
 */
export function remainingSeconds(
  progress: Pick<JobProgress, 'epoch' | 'epochs' | 'batch' | 'batches' | 'etaSeconds'>,
  history: Pick<EpochRecord, 'seconds'>[],
): number {
  const fromWorker = progress.etaSeconds;
  if (history.length === 0 || progress.batches === 0) return fromWorker;
  const perEpoch = history.reduce((sum, h) => sum + h.seconds, 0) / history.length;
  const done = progress.epoch - 1 + progress.batch / progress.batches;
  const fromEpochs = Math.max(0, progress.epochs - done) * perEpoch;
  return Number.isFinite(fromWorker) ? Math.max(fromWorker, fromEpochs) : fromEpochs;
}

export interface ProgressText {
  epoch: string;
  rate: string;
  eta: string;
  percent: number;
}

export function describeProgress(progress: JobProgress | null, history: EpochRecord[]): ProgressText {
  if (!progress) return { epoch: '—', rate: '—', eta: '—', percent: 0 };
  return {
    epoch: `epoch ${progress.epoch} of ${progress.epochs}, batch ${progress.batch} of ${progress.batches}`,
    rate: formatRate(progress.imagesPerSecond),
    eta: formatDuration(remainingSeconds(progress, history)),
    percent: Math.min(100, Math.max(0, progress.percent)),
  };
}
