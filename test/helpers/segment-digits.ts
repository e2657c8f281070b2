import { IMAGE_PIXELS, IMAGE_SIDE } from '../../src/ml/image-shape.js';
import { createRandom } from '../../src/ml/random.js';

/**
 * Digits as a seven-segment display draws them: a style MNIST's handwriting lacks (a '1' on the
 * right of its box, square corners, a '7' of two straight strokes, a '4' without its top), so a
 * model trained on MNIST alone misreads many of them. Drawn procedurally from a seed, with jitter
 * in position, size, slant, stroke width and the gaps between segments, and anti-aliased, so no
 * two are alike and the same seed always draws the same ones.
 */

/** Segments by letter, as on a display: a top, b top right, c bottom right, d bottom, e bottom left, f top left, g middle. */
const SEGMENTS_OF: readonly string[] = [
  'abcdef',
  'bc',
  'abdeg',
  'abcdg',
  'bcfg',
  'acdfg',
  'acdefg',
  'abc',
  'abcdefg',
  'abcdfg',
];

/** Each segment's ends on a unit box: x 0..1 left to right, y 0..1 top to bottom. */
const ENDS: Record<string, [number, number, number, number]> = {
  a: [0, 0, 1, 0],
  b: [1, 0, 1, 0.5],
  c: [1, 0.5, 1, 1],
  d: [0, 1, 1, 1],
  e: [0, 0.5, 0, 1],
  f: [0, 0, 0, 0.5],
  g: [0, 0.5, 1, 0.5],
};

export interface SegmentDigits {
  count: number;
  /** count x 784 bytes, row-major, 0..255, white on black as MNIST. */
  images: Uint8Array;
  /** The digit each image shows. */
  labels: Uint8Array;
}

/** `perDigit` images of each digit 0..9 (digit-major: all 0s, then all 1s, ...), drawn from `seed`. */
export function segmentDigits(perDigit: number, seed: number): SegmentDigits {
  const random = createRandom(seed);
  const between = (low: number, high: number) => low + (high - low) * random();
  const count = 10 * perDigit;
  const images = new Uint8Array(count * IMAGE_PIXELS);
  const labels = new Uint8Array(count);
  for (let digit = 0; digit < 10; digit++) {
    for (let k = 0; k < perDigit; k++) {
      const i = digit * perDigit + k;
      labels[i] = digit;
      drawDigit(images.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS), digit, {
        width: between(9, 15),
        height: between(15, 21),
        centreX: 14 + between(-2.5, 2.5),
        centreY: 14 + between(-2, 2),
        slant: between(-0.3, 0.3),
        stroke: between(1.6, 3.6),
        gap: between(0, 1.4),
        ink: between(0.8, 1),
      });
    }
  }
  return { count, images, labels };
}

interface Look {
  width: number;
  height: number;
  centreX: number;
  centreY: number;
  /** Horizontal shift per pixel up from the centre (italic to the right when positive). */
  slant: number;
  stroke: number;
  /** Pixels cut from each end of a segment. */
  gap: number;
  /** Brightest value, as a fraction of 255. */
  ink: number;
}

function drawDigit(out: Uint8Array, digit: number, look: Look): void {
  const left = look.centreX - look.width / 2;
  const top = look.centreY - look.height / 2;
  const lines = [...SEGMENTS_OF[digit]!].map((segment) => {
    const [x0, y0, x1, y1] = ENDS[segment]!;
    const ax = left + x0 * look.width;
    const ay = top + y0 * look.height;
    const bx = left + x1 * look.width;
    const by = top + y1 * look.height;
    const length = Math.hypot(bx - ax, by - ay);
    const cut = Math.min(look.gap, length / 3) / length;
    return {
      ax: ax + (bx - ax) * cut,
      ay: ay + (by - ay) * cut,
      bx: bx - (bx - ax) * cut,
      by: by - (by - ay) * cut,
    };
  });
  const half = look.stroke / 2;
  for (let y = 0; y < IMAGE_SIDE; y++) {
    for (let x = 0; x < IMAGE_SIDE; x++) {
      // Undo the slant: the pixel's place on the upright digit.
      const px = x + 0.5 - look.slant * (look.centreY - (y + 0.5));
      const py = y + 0.5;
      let nearest = Infinity;
      for (const line of lines) nearest = Math.min(nearest, distanceToSegment(px, py, line));
      // One pixel of soft edge, as a scanned pen stroke.
      const coverage = Math.min(1, Math.max(0, half + 0.5 - nearest));
      out[y * IMAGE_SIDE + x] = Math.round(255 * look.ink * coverage);
    }
  }
}

function distanceToSegment(
  px: number,
  py: number,
  { ax, ay, bx, by }: { ax: number; ay: number; bx: number; by: number },
): number {
  const dx = bx - ax;
  const dy = by - ay;
  const t = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}
