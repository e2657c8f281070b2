import type { ChartPoint } from './chart-scale.js';

/**
 * The per-batch line of a job: its own curve (thinned, from its start) up to the first point this
 * page saw live, then every point seen live.
 */
export function batchLine(earlier: readonly ChartPoint[], live: readonly ChartPoint[]): ChartPoint[] {
  const first = live[0]?.x ?? Infinity;
  return [...earlier.filter((p) => p.x < first), ...live];
}

/** Adds a point seen live to `live`; answers whether the line changed. */
export function addLivePoint(live: ChartPoint[], point: ChartPoint): boolean {
  const last = live.at(-1);
  if (last && point.x === last.x) return false; // a repeat after the stream reconnected
  // Further back: the job resumed from its last checkpoint, and goes over those batches again.
  if (last && point.x < last.x) live.splice(live.findIndex((p) => p.x >= point.x));
  live.push(point);
  return true;
}
