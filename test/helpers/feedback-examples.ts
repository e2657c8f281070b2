import { feedbackId, feedbackSplit, type FeedbackExample } from '../../src/feedback/feedback-schema.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';

/** A stored correction of `pixels` (784 bytes) as class `className`, sent `second` seconds after a fixed time. */
export function feedbackExample(pixels: Uint8Array, className: string, second = 0): FeedbackExample {
  return {
    id: feedbackId(pixels),
    class: className,
    modelVersion: null,
    predicted: null,
    createdAt: new Date(Date.UTC(2026, 0, 1, 12, 0, second)).toISOString(),
    pixels: Buffer.from(pixels).toString('base64'),
  };
}

/**
 * `count` made-up images whose ids fall in `split`, each with a first byte of its own, so a
 * training set's origin can be read off its pixels. Deterministic: the same call, the same images.
 */
export function imagesInSplit(split: 'train' | 'test', count: number, from = 0): Uint8Array[] {
  const found: Uint8Array[] = [];
  for (let n = from; found.length < count; n++) {
    const pixels = new Uint8Array(IMAGE_PIXELS).fill(n % 251);
    pixels[1] = Math.floor(n / 251);
    if (feedbackSplit(feedbackId(pixels)) === split) found.push(pixels);
  }
  return found;
}
