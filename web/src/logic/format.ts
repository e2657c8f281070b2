/** Text for numbers the page shows; pure, so the unit tests cover them (test/web/format.test.ts). */

const DASH = '—';

/** "45 s", "2 min 05 s", "1 h 02 min"; a dash when unknown (not finite or negative). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return DASH;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** "1,234 images/s"; one decimal below 10, where the rounding would hide the change. */
export function formatRate(imagesPerSecond: number): string {
  if (!Number.isFinite(imagesPerSecond) || imagesPerSecond <= 0) return DASH;
  const digits = imagesPerSecond < 10 ? 1 : 0;
  return `${imagesPerSecond.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })} images/s`;
}

/** 0.98765 -> "98.8 %"; a dash for null (no validation split). */
export function formatPercent(fraction: number | null | undefined, digits = 1): string {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return DASH;
  return `${(100 * fraction).toFixed(digits)} %`;
}

export function formatNumber(value: number | null | undefined, digits = 4): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return DASH;
  return value.toFixed(digits);
}

/** At most `chars` characters, the cut marked with an ellipsis (for an axis; the whole text goes in a tooltip). */
export function truncate(text: string, chars: number): string {
  const characters = [...text];
  return characters.length <= chars ? text : `${characters.slice(0, Math.max(chars - 1, 1)).join('')}\u2026`;
}
