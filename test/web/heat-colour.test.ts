import { describe, expect, it } from 'vitest';
import { clampFraction, heatColour, rowShares, textColourOn } from '../../web/src/logic/heat-colour.js';

const channels = (colour: string) => colour.match(/\d+/g)!.map(Number);
const brightness = (colour: string) => channels(colour).reduce((a, b) => a + b, 0);

describe('confusion-matrix colour scale', () => {
  it('when the share is 0 or 1, then the cell is white or the darkest blue', () => {
    expect(heatColour(0)).toBe('rgb(255, 255, 255)');
    expect(heatColour(1)).toBe('rgb(8, 48, 107)');
  });

  it('when the share grows, then the colour only gets darker', () => {
    const shares = Array.from({ length: 101 }, (_, i) => i / 100);
    const levels = shares.map((s) => brightness(heatColour(s)));
    for (let i = 1; i < levels.length; i++) expect(levels[i]!).toBeLessThanOrEqual(levels[i - 1]!);
  });

  it('when a share is small, then it is still visibly off-white (a 1 % confusion must show)', () => {
    expect(brightness(heatColour(0.01))).toBeLessThan(3 * 255 - 40);
  });

  it('when the share is outside 0..1 or not a number, then it is clamped', () => {
    expect(heatColour(-3)).toBe(heatColour(0));
    expect(heatColour(7)).toBe(heatColour(1));
    expect(heatColour(Number.NaN)).toBe(heatColour(0));
    expect(clampFraction(Number.POSITIVE_INFINITY)).toBe(0);
  });

  it('when the cell is dark, then its text is white, and black on light cells', () => {
    expect(textColourOn(0)).toBe('#000');
    expect(textColourOn(0.02)).toBe('#000');
    expect(textColourOn(1)).toBe('#fff');
    // One switch from black to white along the scale, never back.
    const texts = Array.from({ length: 101 }, (_, i) => textColourOn(i / 100));
    expect(
      texts
        .join('')
        .replace(/(#000)+/, 'B')
        .replace(/(#fff)+/, 'W'),
    ).toBe('BW');
  });

  it('when rows are turned into shares, then each row sums to 1 and an empty row stays 0', () => {
    expect(
      rowShares([
        [3, 1],
        [0, 0],
      ]),
    ).toEqual([
      [0.75, 0.25],
      [0, 0],
    ]);
  });
});
