import { describe, expect, it } from 'vitest';
import { accuracyAxisMin, percentTick, type ChartPoint } from '../../web/src/logic/chart-scale.js';

/** Points at x = start, start + step, ... with these accuracies. */
const series = (ys: number[], start: number, step: number): ChartPoint[] =>
  ys.map((y, i) => ({ x: start + i * step, y }));

describe('the accuracy axis', () => {
  it('when every accuracy is above 90 %, then the axis starts above 0, under the lowest, so 97 % and 99 % lie apart', () => {
    const batches = series([0.97, 0.975, 0.98, 0.985, 0.99], 0.2, 0.2);
    const min = accuracyAxisMin(batches, [{ x: 1, y: 0.978 }]);
    expect(min).toBe(0.96);
    // 97 % and 99 % are half the axis apart, where 0-100 % put them 2 % apart.
    expect((0.99 - 0.97) / (1 - min)).toBe(0.5);
    expect(accuracyAxisMin(series([0.91, 0.95], 0.5, 0.5), [])).toBe(0.9);
    expect(accuracyAxisMin(series([0.85, 0.95], 0.5, 0.5), [])).toBe(0.8);
    expect(accuracyAxisMin(series([0.995, 1], 0.5, 0.5), [])).toBe(0.98);
  });

  it('when accuracies are low, then the axis goes down to a round step under them, to 0 near chance', () => {
    expect(accuracyAxisMin(series([0.5, 0.7], 0.5, 0.5), [])).toBe(0.4);
    expect(accuracyAxisMin(series([0.72, 0.8], 0.5, 0.5), [])).toBe(0.65);
    expect(accuracyAxisMin(series([0.1, 0.6], 0.5, 0.5), [])).toBe(0);
    expect(accuracyAxisMin([], [])).toBe(0);
  });

  it("when the run is past its first epoch, then that epoch's climb from chance no longer stretches the axis; the per-epoch figures still count", () => {
    const first = series([0.1, 0.5, 0.8, 0.9], 0.25, 0.25);
    const second = series([0.96, 0.97, 0.975], 1.25, 0.25);
    // During the first epoch the climb is all there is: it is shown whole.
    expect(accuracyAxisMin(first, [])).toBe(0);
    expect(accuracyAxisMin([...first, ...second], [])).toBe(0.95);
    expect(accuracyAxisMin([...first, ...second], [{ x: 1, y: 0.93 }])).toBe(0.92);
  });

  it('when ticks are labelled, then they read as whole percents, or tenths on a narrow axis', () => {
    expect(percentTick(0.25)).toBe('25 %');
    expect(percentTick(0.965)).toBe('96.5 %');
    expect(percentTick(0.9600000001)).toBe('96 %');
    expect(percentTick(1)).toBe('100 %');
  });
});
