import { describe, expect, it } from 'vitest';
import { addLivePoint, batchLine } from '../../web/src/logic/batch-line.js';
import type { ChartPoint } from '../../web/src/logic/chart-scale.js';

const at = (...xs: number[]): ChartPoint[] => xs.map((x) => ({ x, y: x / 10 }));

describe("the job view's per-batch line", () => {
  it("when the page opened mid-job, then the job's own curve comes first, up to the first point seen live", () => {
    const earlier = at(0.1, 0.4, 0.7, 1, 1.3);
    const live: ChartPoint[] = [];
    expect(batchLine(earlier, live)).toEqual(earlier);
    for (const point of at(1.2, 1.25, 1.3)) addLivePoint(live, point);
    expect(batchLine(earlier, live)).toEqual(at(0.1, 0.4, 0.7, 1, 1.2, 1.25, 1.3));
  });

  it('when the stream reconnects and repeats the last point, then the line stays as it is', () => {
    const live = at(0.2, 0.3);
    expect(addLivePoint(live, { x: 0.3, y: 0.03 })).toBe(false);
    expect(live).toEqual(at(0.2, 0.3));
  });

  it('when the job resumes from its checkpoint, then the batches it trains again replace the ones drawn past it', () => {
    const live = at(0.5, 1, 1.2, 1.4);
    expect(addLivePoint(live, { x: 1.1, y: 0.5 })).toBe(true);
    expect(live).toEqual([...at(0.5, 1), { x: 1.1, y: 0.5 }]);
  });
});
