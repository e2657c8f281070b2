import { describe, expect, it } from 'vitest';
import { formatDuration, formatPercent, formatRate } from '../../web/src/logic/format.js';
import { batchPoint, describeProgress, remainingSeconds } from '../../web/src/logic/progress.js';

const progress = {
  epoch: 2,
  epochs: 4,
  batch: 50,
  batches: 100,
  percent: 37.5,
  imagesPerSecond: 2_345.6,
  etaSeconds: 75,
  loss: 0.2,
  accuracy: 0.93,
  history: [],
  batchHistory: [],
};
const epochOf = (seconds: number) => ({
  epoch: 1,
  loss: 0.3,
  accuracy: 0.9,
  valLoss: null,
  valAccuracy: null,
  seconds,
});

describe('numbers on the page', () => {
  it.each([
    [0, '0 s'],
    [44.6, '45 s'],
    [125, '2 min 05 s'],
    [3_725, '1 h 02 min'],
    [Number.NaN, '—'],
    [Number.POSITIVE_INFINITY, '—'],
    [-1, '—'],
  ])('when a duration is %s s, then it reads %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });

  it('when a rate or a share is shown, then it is rounded for reading and a dash when unknown', () => {
    expect(formatRate(2_345.6)).toBe('2,346 images/s');
    expect(formatRate(7.25)).toBe('7.3 images/s');
    expect(formatRate(0)).toBe('—');
    expect(formatPercent(0.98765)).toBe('98.8 %');
    expect(formatPercent(0.98765, 2)).toBe('98.77 %');
    expect(formatPercent(null)).toBe('—');
  });
});

describe('training progress', () => {
  it('when a batch is reported, then its point sits at the fraction of the run in epochs', () => {
    expect(batchPoint(progress)).toEqual({ x: 1.5, loss: 0.2, accuracy: 0.93 });
    expect(batchPoint({ ...progress, batch: 100 }).x).toBe(2);
    expect(batchPoint({ ...progress, batches: 0 }).x).toBe(1);
  });

  it("when no epoch has finished yet, then the time left is the worker's estimate", () => {
    expect(remainingSeconds(progress, [])).toBe(75);
  });

  it('when finished epochs took longer than the batches alone suggest, then their wall time wins', () => {
    // 2.5 epochs left at 40 s each (evaluation included) = 100 s, more than the worker's 75 s.
    expect(remainingSeconds(progress, [epochOf(40)])).toBe(100);
    // ... and when they were quicker, the worker's own estimate stays.
    expect(remainingSeconds(progress, [epochOf(10), epochOf(20)])).toBe(75);
  });

  it('when the job has not reported yet, then every figure is a dash', () => {
    expect(describeProgress(null, [])).toEqual({ epoch: '—', rate: '—', eta: '—', percent: 0 });
    expect(describeProgress(progress, [])).toEqual({
      epoch: 'epoch 2 of 4, batch 50 of 100',
      rate: '2,346 images/s',
      eta: '1 min 15 s',
      percent: 37.5,
    });
  });
});
