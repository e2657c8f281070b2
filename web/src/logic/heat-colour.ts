/**
 * Colours of the confusion-matrix heat map. Cells are shaded by their share of the true class
 * (row), so a class with few test images is as readable as one with many. The scale runs from
 * white to a dark blue in sRGB steps that look even; the text turns white where the cell is dark.
 */

const LOW = [255, 255, 255] as const;
const HIGH = [8, 48, 107] as const;

export function clampFraction(value: number): number {
  if (!Number.isFinite(value)) return 0;
  return Math.min(1, Math.max(0, value));
}

/** The cell colour for a fraction 0..1 (clamped; NaN counts as 0), as `rgb(r, g, b)`. */
export function heatColour(fraction: number): string {
  // A square root lifts the small off-diagonal shares, the ones worth seeing, above the white.
  const t = Math.sqrt(clampFraction(fraction));
  const channel = (i: 0 | 1 | 2) => Math.round(LOW[i] + (HIGH[i] - LOW[i]) * t);
  return `rgb(${channel(0)}, ${channel(1)}, ${channel(2)})`;
}

/** Black or white text, whichever reads better on heatColour(fraction) (WCAG relative luminance). */
export function textColourOn(fraction: number): '#000' | '#fff' {
  const rgb = heatColour(fraction).match(/\d+/g)!.map(Number);
  const linear = rgb.map((c) => {
    const v = c / 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  const luminance = 0.2126 * linear[0]! + 0.7152 * linear[1]! + 0.0722 * linear[2]!;
  // Contrast with black is (L + 0.05) / 0.05, with white 1.05 / (L + 0.05): equal at L = 0.179.
  return luminance > 0.179 ? '#000' : '#fff';
}

/** Each count as a share of its row's total (0 for an empty row). */
export function rowShares(matrix: number[][]): number[][] {
  return matrix.map((row) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count) => (total > 0 ? count / total : 0));
  });
}
