import type { TrainProgress } from '../ml/train.js';

/** The bar's most characters between its brackets: wider says nothing more. */
const BAR_MAX = 30;
/** Narrower than this, the bar is left out and the figures alone are shown. */
const BAR_MIN = 10;

/** A fraction as a percentage with two decimals; null (no such figure) as a dash. */
export const percent = (x: number | null) => (x === null ? '   -   ' : `${(100 * x).toFixed(2)} %`);

/** Seconds as m:ss, or h:mm:ss from an hour on. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const [h, m, r] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  const ss = String(r).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/**
 * Seconds until the epoch's batches are done, at the run's pace so far: the run's ETA shared out
 * over the batches it still has, of which this epoch's are the first.
 */
export function epochSecondsLeft(p: TrainProgress): number {
  const runBatchesLeft = p.epochs * p.batches - ((p.epoch - 1) * p.batches + p.batch);
  return runBatchesLeft > 0 ? (p.etaSeconds * (p.batches - p.batch)) / runBatchesLeft : 0;
}

const epochOf = (p: TrainProgress) =>
  `epoch ${String(p.epoch).padStart(String(p.epochs).length)}/${p.epochs}`;
const batchOf = (p: TrainProgress) => `${String(p.batch).padStart(String(p.batches).length)}/${p.batches}`;

/**
 * How the epoch goes so far: the figures the bar and the plain batch lines share, each in a fixed
 * width so that the bar keeps its length from one redraw to the next.
 */
function figures(p: TrainProgress): string {
  return (
    `loss ${p.loss.toFixed(4)}  acc ${percent(p.accuracy).padStart(8)}` +
    `  ${String(Math.round(p.imagesPerSecond)).padStart(5)} img/s` +
    `  ETA ${formatDuration(epochSecondsLeft(p)).padStart(5)}`
  );
}

/**
 * The in-place line of a terminal, never more than `width - 1` characters: a line that reached
 * the last column would wrap in some terminals, and `\r` would then redraw only its second half.
 */
export function progressBar(p: TrainProgress, width: number): string {
  const head = `${epochOf(p)} `;
  const tail = ` ${batchOf(p)}  ${figures(p)}`;
  const room = Math.min(BAR_MAX, width - 1 - head.length - tail.length - 2);
  if (room < BAR_MIN) return `${epochOf(p)}${tail}`.slice(0, Math.max(0, width - 1));
  const done = Math.min(room, Math.floor((room * p.batch) / p.batches));
  const bar = '='.repeat(done) + (done < room ? '>' : '') + ' '.repeat(Math.max(0, room - done - 1));
  return `${head}[${bar}]${tail}`;
}

/** A batch's line in a log: what the bar says, as text that reads on its own. */
export function batchLine(p: TrainProgress): string {
  return `${epochOf(p)}  batch ${batchOf(p)}  ${figures(p)}`;
}

/** An epoch's line, with its validation when the run holds some images out. */
export function epochLine(p: TrainProgress): string {
  const val =
    p.valLoss === undefined
      ? ''
      : `  val_loss ${p.valLoss.toFixed(4)}  val_acc ${percent(p.valAccuracy ?? null)}`;
  return (
    `${epochOf(p)}  loss ${p.loss.toFixed(4)} (last batch ${p.lastBatchLoss?.toFixed(4)})` +
    `  acc ${percent(p.accuracy)}${val}` +
    `  ${Math.round(p.imagesPerSecond)} img/s  ${p.elapsedSeconds.toFixed(1)} s`
  );
}
