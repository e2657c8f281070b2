import type { TrainProgress } from '../ml/train.js';
import { batchLine, epochLine, progressBar } from './progress-text.js';

/** Where the progress goes: a terminal (redrawn in place) or a pipe or file (whole lines). */
export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  /** The terminal's width, read at each redraw (it may be resized); 0 or missing: 80. */
  columns?: number;
}

export interface ProgressPrinterOptions {
  /** Milliseconds, any origin; @default performance.now */
  now?: () => number;
  /** Least time between two redraws of the bar; @default 100 (ten a second) */
  frameMs?: number;
  /** Batch lines per epoch when not on a terminal, evenly spaced; @default 4 */
  linesPerEpoch?: number;
}

/**
 * `npm run train`'s progress. On a terminal, a bar within each epoch, redrawn in place with `\r`
 * at most every `frameMs`, and a line per finished epoch. Anywhere else (a log file, a pipe, CI),
 * no `\r`: a plain line at each quarter of an epoch and one per finished epoch.
 */
export class ProgressPrinter {
  private readonly now: () => number;
  private readonly frameMs: number;
  private readonly linesPerEpoch: number;
  private lastFrame = Number.NEGATIVE_INFINITY;
  /** Characters of the bar now on the line, to blank before anything else is written. */
  private shown = 0;
  private epoch = 0;
  private linesThisEpoch = 0;

  constructor(
    private readonly out: ProgressOutput,
    options: ProgressPrinterOptions = {},
  ) {
    this.now = options.now ?? (() => performance.now());
    this.frameMs = options.frameMs ?? 100;
    this.linesPerEpoch = options.linesPerEpoch ?? 4;
  }

  update(p: TrainProgress): void {
    if (p.kind === 'epoch') {
      this.end();
      this.out.write(`${epochLine(p)}\n`);
      // The next epoch's first batch shows at once.
      this.lastFrame = Number.NEGATIVE_INFINITY;
    } else if (this.out.isTTY) {
      this.redraw(p);
    } else {
      this.line(p);
    }
  }

  /** Blanks the bar, if one is on the line, so that what is written next starts on a clean line. */
  end(): void {
    if (this.shown === 0) return;
    // Spaces, not an erase-line escape: the same on every terminal, `TERM=dumb` included.
    this.out.write(`\r${' '.repeat(this.shown)}\r`);
    this.shown = 0;
  }

  private redraw(p: TrainProgress): void {
    const now = this.now();
    if (now - this.lastFrame < this.frameMs) return;
    this.lastFrame = now;
    const width = this.out.columns || 80;
    const bar = progressBar(p, width);
    // Padded over a longer bar drawn before (its figures may have been wider), within the width.
    this.out.write(`\r${bar.padEnd(Math.min(this.shown, width - 1))}`);
    this.shown = Math.min(Math.max(this.shown, bar.length), width - 1);
  }

  private line(p: TrainProgress): void {
    if (p.epoch !== this.epoch) [this.epoch, this.linesThisEpoch] = [p.epoch, 0];
    const due = Math.floor((this.linesPerEpoch * p.batch) / p.batches);
    if (due <= this.linesThisEpoch) return;
    this.linesThisEpoch = due;
    this.out.write(`${batchLine(p)}\n`);
  }
}
