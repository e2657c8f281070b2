import { describe, expect, it } from 'vitest';
import {
  batchLine,
  epochLine,
  epochSecondsLeft,
  formatDuration,
  progressBar,
} from '../../src/cli/progress-text.js';
import type { TrainProgress } from '../../src/ml/train.js';

/** Batch 5 of 10 in epoch 1 of 2: 15 batches of the run left, a second each. */
function progress(over: Partial<TrainProgress> = {}): TrainProgress {
  return {
    kind: 'batch',
    ...{ epoch: 1, epochs: 2, batch: 5, batches: 10, percent: 25 },
    ...{ loss: 0.1234, accuracy: 0.912, imagesPerSecond: 640.4, elapsedSeconds: 5, etaSeconds: 15 },
    ...over,
  };
}

describe('formatDuration', () => {
  it.each([
    [0, '0:00'],
    [7.4, '0:07'],
    [59.6, '1:00'],
    [65, '1:05'],
    [3725, '1:02:05'],
    [-3, '0:00'],
  ])('when given %d s, then it says %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});

describe('epochSecondsLeft', () => {
  it("when half an epoch is left, then it is that share of the run's ETA", () => {
    expect(epochSecondsLeft(progress())).toBe(5);
    expect(epochSecondsLeft(progress({ epoch: 2, batch: 2, etaSeconds: 16 }))).toBe(16);
  });

  it('when the last batch of the run is done, then nothing is left', () => {
    expect(epochSecondsLeft(progress({ epoch: 2, batch: 10, etaSeconds: 0 }))).toBe(0);
  });
});

describe('progressBar', () => {
  it('when there is room, then it shows the epoch, a bar as full as the epoch is done, the batches, loss, accuracy, speed and ETA', () => {
    const line = progressBar(progress(), 80);
    expect(line).toMatch(
      /^epoch 1\/2 \[(=+)>( +)\] {2}5\/10 {2}loss 0\.1234 {2}acc {2}91\.20 % {4}640 img\/s {2}ETA {2}0:05$/,
    );
    const [, done, rest] = /\[(=*)>?( *)\]/.exec(line)!;
    const inside = line.indexOf(']') - line.indexOf('[') - 1;
    expect(done!.length).toBe(Math.floor(inside / 2));
    expect(done!.length + 1 + rest!.length).toBe(inside);
    expect(line.length).toBeLessThanOrEqual(79);
  });

  it('when the epoch is done, then the bar is all =', () => {
    expect(progressBar(progress({ batch: 10 }), 80)).toMatch(/\[=+\] 10\/10/);
  });

  it('when the figures change width, then the line keeps its length (so the bar does not jump)', () => {
    const widths = [
      progress({ imagesPerSecond: 9, accuracy: 0.05, etaSeconds: 3 }),
      progress({ imagesPerSecond: 12_345, accuracy: 1, etaSeconds: 1500 }),
    ].map((p) => progressBar(p, 100).length);
    expect(widths[0]).toBe(widths[1]);
  });

  it('when the terminal is wide, then the bar stops at 30 characters', () => {
    const line = progressBar(progress(), 300);
    expect(line.indexOf(']') - line.indexOf('[') - 1).toBe(30);
  });

  it('when the terminal is too narrow for a bar, then the figures alone are shown, cut to the width', () => {
    const line = progressBar(progress(), 60);
    expect(line).not.toContain('[');
    expect(line).toMatch(/^epoch 1\/2 {2}5\/10 {2}loss 0\.1234/);
    expect(line.length).toBe(59);
  });

  it('when some run has 100 epochs and 1000 batches, then the numbers are padded to their widths', () => {
    expect(progressBar(progress({ epoch: 7, epochs: 100, batch: 42, batches: 1000 }), 120)).toMatch(
      /^epoch {3}7\/100 \[.*\] {3}42\/1000 {2}loss/,
    );
  });
});

describe('batchLine and epochLine', () => {
  it('when a batch is told in a log, then its line has the same figures as the bar, without it', () => {
    expect(batchLine(progress())).toBe(
      'epoch 1/2  batch  5/10  loss 0.1234  acc  91.20 %    640 img/s  ETA  0:05',
    );
  });

  it('when an epoch ends, then its line has the loss, the last batch loss, accuracy and validation', () => {
    const end = progress({ kind: 'epoch', batch: 10, lastBatchLoss: 0.2, valLoss: 0.15, valAccuracy: 0.95 });
    expect(epochLine(end)).toBe(
      'epoch 1/2  loss 0.1234 (last batch 0.2000)  acc 91.20 %  val_loss 0.1500  val_acc 95.00 %  640 img/s  5.0 s',
    );
    expect(epochLine({ ...end, valLoss: undefined, valAccuracy: undefined })).not.toContain('val_');
  });
});
