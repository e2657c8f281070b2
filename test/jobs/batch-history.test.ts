import { describe, expect, it } from 'vitest';
import { BatchHistory, batchPoint } from '../../src/jobs/batch-history.js';
import { BATCH_HISTORY_MAX, jobProgressSchema } from '../../src/jobs/job-schema.js';

/** Every batch of a run of `epochs` x `batches`, as the worker would report it with no throttle. */
function everyBatch(epochs: number, batches: number, firstEpoch = 1) {
  const points = [];
  for (let epoch = firstEpoch; epoch <= epochs; epoch++)
    for (let batch = 1; batch <= batches; batch++)
      points.push(batchPoint({ epoch, batch, batches, loss: 1 / (epoch + batch), accuracy: 0.9 }));
  return points;
}

describe("a job's per-batch curve", () => {
  it('when a batch is reported, then its point is at the epochs done, its figures cut to five digits', () => {
    expect(
      batchPoint({ epoch: 2, batch: 50, batches: 100, loss: 0.123456789, accuracy: 0.987654321 }),
    ).toEqual({
      x: 1.5,
      loss: 0.12346,
      accuracy: 0.98765,
    });
    expect(batchPoint({ epoch: 1, batch: 1, batches: 3, loss: 1, accuracy: 0 }).x).toBe(0.3333);
    expect(batchPoint({ epoch: 3, batch: 0, batches: 0, loss: 1, accuracy: 0 }).x).toBe(2);
  });

  it('when a long run reports every batch, then at most the maximum is kept, spread evenly from its start to its end', () => {
    const curve = new BatchHistory(20);
    const reported = everyBatch(20, 938);
    const kept = reported.filter((p) => curve.add(p));
    const points = curve.points;
    expect(points).toEqual(kept);
    expect(points.length).toBeLessThanOrEqual(BATCH_HISTORY_MAX);
    expect(points.length).toBeGreaterThan(BATCH_HISTORY_MAX * 0.9);
    expect(points[0]).toEqual(reported[0]);
    // Even: no gap much wider than the spacing (20 epochs / 99), the last one near the end.
    const gaps = points.slice(1).map((p, i) => p.x - points[i]!.x);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(20 / 99);
    expect(Math.max(...gaps)).toBeLessThan(20 / 99 + 2 / 938);
    expect(points.at(-1)!.x).toBeGreaterThan(19.7);
    // What a client is sent with each report stays small.
    expect(JSON.stringify(points).length).toBeLessThan(5_000);
  });

  it('when a short run reports fewer batches than the maximum, then every one is kept', () => {
    const curve = new BatchHistory(2);
    const reported = everyBatch(2, 20);
    for (const point of reported) curve.add(point);
    expect(curve.points).toEqual(reported);
  });

  it('when a run resumes from a checkpoint, then the points up to it stay and the ones after it are drawn again', () => {
    const before = new BatchHistory(4);
    // The first attempt got half-way through epoch 3 before it was handed over.
    for (const point of everyBatch(4, 10).filter((p) => p.x <= 2.5)) before.add(point);
    const resumed = new BatchHistory(4, { earlier: before.points, epochsDone: 2 });
    expect(resumed.points).toEqual(before.points.filter((p) => p.x <= 2));
    for (const point of everyBatch(4, 10, 3)) resumed.add(point);
    const xs = resumed.points.map((p) => p.x);
    expect(xs).toEqual([...xs].sort((a, b) => a - b));
    expect(new Set(xs).size).toBe(xs.length);
    expect(xs).toEqual(everyBatch(4, 10).map((p) => p.x));
  });

  it('when a figure is not a number (a diverged run), then the point is skipped rather than sent as null', () => {
    const curve = new BatchHistory(1);
    expect(curve.add({ x: 0.1, loss: Number.NaN, accuracy: 0.1 })).toBe(false);
    expect(curve.add({ x: 0.2, loss: 2, accuracy: Number.POSITIVE_INFINITY })).toBe(false);
    expect(curve.add({ x: 0.3, loss: 2, accuracy: 0.1 })).toBe(true);
    expect(curve.points).toEqual([{ x: 0.3, loss: 2, accuracy: 0.1 }]);
  });

  it('when progress was written before the curve existed, then it reads as an empty curve; a longer one than the maximum is refused', () => {
    const old = {
      epoch: 1,
      epochs: 2,
      batch: 3,
      batches: 10,
      percent: 15,
      imagesPerSecond: 9,
      etaSeconds: 4,
    };
    const parsed = jobProgressSchema.parse({ ...old, loss: 0.5, accuracy: 0.8, history: [] });
    expect(parsed.batchHistory).toEqual([]);
    const tooLong = Array.from({ length: BATCH_HISTORY_MAX + 1 }, (_, i) => ({
      x: i,
      loss: 1,
      accuracy: 0.5,
    }));
    const refused = jobProgressSchema.safeParse({ ...parsed, batchHistory: tooLong });
    expect(refused.success).toBe(false);
  });
});
