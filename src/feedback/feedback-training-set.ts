import { IMAGE_PIXELS, IMAGE_SIDE } from '../ml/image-shape.js';
import type { ImageSet } from '../ml/data/dataset.js';
import { examplePixels, feedbackSplit, type FeedbackExample } from './feedback-schema.js';

/** What a run made of the stored feedback: the report's account of it. */
export interface FeedbackCounts {
  /** Examples trained on: in the 'train' split, of a class the run's model outputs. */
  examples: number;
  /** Images they gave each epoch: examples x weight (feedbackImages). */
  images: number;
  /** 'train' examples left out: their class is not among the run's classes. */
  otherClasses: number;
  /** 'test' examples, never trained on: what every version is measured on. */
  heldOut: number;
}

/**
 * Images a `weight` makes of `examples` examples: examples x weight, rounded. A fraction is spread
 * evenly over the examples (feedbackRepeats), so a weight of 2.5 over 10 examples gives 25 images,
 * not 20 or 30. Also what JOB_MAX_IMAGES counts.
 */
export function feedbackImages(examples: number, weight: number): number {
  // The same sum feedbackRepeats gives, float rounding included.
  const whole = Math.floor(weight);
  return examples * whole + Math.round(examples * (weight - whole));
}

/**
 * How often example `i` of `n` is repeated for `weight`: floor(weight) times, and once more for
 * every other, every third, ... example as the fraction says (rounded at even steps, as a line is
 * drawn on pixels). The sum over all n is feedbackImages(n, weight); no seed needed.
 */
export function feedbackRepeats(i: number, weight: number): number {
  const whole = Math.floor(weight);
  const fraction = weight - whole;
  return whole + Math.round((i + 1) * fraction) - Math.round(i * fraction);
}

/**
 * The images a run trains on from the stored feedback: each 'train' example whose class is one of
 * `classes`, labelled by that class's index, repeated by `weight` (feedbackRepeats), in id order.
 * Training shuffles them in with the rest every epoch.
 */
export function feedbackTrainingSet(
  stored: readonly FeedbackExample[],
  classes: readonly string[],
  weight: number,
): { set: ImageSet; counts: FeedbackCounts } {
  if (!(weight >= 1)) throw new RangeError(`a feedback weight is at least 1, got ${weight}`);
  const labelOf = new Map(classes.map((name, label) => [name, label]));
  // By id, not as listed: the listing's order follows arrival times, and a run's images (so its
  // weights, for a seed) should depend only on which examples are stored.
  const used = stored
    .filter((example) => trainsOn(example, labelOf))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const heldOut = stored.filter((example) => feedbackSplit(example.id) === 'test').length;
  const otherClasses = stored.length - heldOut - used.length;
  const pixels = IMAGE_PIXELS;
  const count = feedbackImages(used.length, weight);
  const images = new Uint8Array(count * pixels);
  const labels = new Uint8Array(count);
  let at = 0;
  used.forEach((example, i) => {
    const image = examplePixels(example);
    const label = labelOf.get(example.class)!;
    for (let r = feedbackRepeats(i, weight); r > 0; r--, at++) {
      images.set(image, at * pixels);
      labels[at] = label;
    }
  });
  return {
    set: { count, height: IMAGE_SIDE, width: IMAGE_SIDE, images, labels },
    counts: { examples: used.length, images: count, otherClasses, heldOut },
  };
}

/** How many of the stored examples a run on `classes` trains on (feedbackTrainingSet's `examples`). */
export function usableFeedback(stored: readonly FeedbackExample[], classes: readonly string[]): number {
  const known = new Map(classes.map((name) => [name, true]));
  return stored.filter((example) => trainsOn(example, known)).length;
}

/** Trained on: in the 'train' split, of one of the run's classes. */
function trainsOn(example: FeedbackExample, classes: ReadonlyMap<string, unknown>): boolean {
  return feedbackSplit(example.id) === 'train' && classes.has(example.class);
}
