/** A point of a training chart: x in epochs done, y the figure. */
export interface ChartPoint {
  x: number;
  y: number;
}

/**
 * Where the accuracy axis starts (it ends at 100 %): a little under the lowest accuracy shown,
 * on a round step, so that 97 % and 99 % lie visibly apart instead of both at the top of 0-100 %.
 * Every per-epoch figure counts; of the per-batch curve, once the run is past its first epoch,
 * only what came after it: that epoch's climb from chance would stretch the axis down to 10 %
 * again, so it comes in from below instead.
 */
export function accuracyAxisMin(batches: readonly ChartPoint[], perEpoch: readonly ChartPoint[]): number {
  const later = batches.filter((p) => p.x > 1);
  const shown = [...(later.length > 0 ? later : batches), ...perEpoch].map((p) => p.y);
  if (shown.length === 0) return 0;
  const lowest = Math.min(...shown);
  // A tenth of what lies between the lowest and 100 %, at least a point, so the lowest is off the edge.
  const padded = lowest - Math.max(0.01, (1 - lowest) / 10);
  const span = 1 - padded;
  const step = span <= 0.1 ? 0.01 : span <= 0.5 ? 0.05 : 0.1;
  // Rounded to whole hundredths, so float steps (0.1 * 9) do not show as 0.8999999.
  const min = Math.round(Math.floor(padded / step + 1e-9) * step * 100) / 100;
  return Math.min(0.99, Math.max(0, min));
}

/** An axis tick in percent: whole percents, or tenths when the axis is that narrow. */
export function percentTick(value: number): string {
  return `${Number((value * 100).toFixed(1))} %`;
}
