import { IMAGE_SIDE } from '../ml/image-shape.js';
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
 * `classes`, labelled by that class's index, repeated by `weight` (feedbackRepeats), in the order
 * given (the store's: oldest first). Training shuffles them in with the rest every epoch.
 */
export function feedbackTrainingSet(
  stored: readonly FeedbackExample[],
  classes: readonly string[],
  weight: number,
): { set: ImageSet; counts: FeedbackCounts } {
  if (!(weight >= 1)) throw new RangeError(`a feedback weight is at least 1, got ${weight}`);
  const labelOf = new Map(classes.map((name, label) => [name, label]));
  const used: { example: FeedbackExample; label: number }[] = [];
  let otherClasses = 0;
  let heldOut = 0;
  for (const example of stored) {
    if (feedbackSplit(example.id) === 'test') heldOut++;
    else {
      const label = labelOf.get(example.class);
      if (label === undefined) otherClasses++;
      else used.push({ example, label });
    }
  }
  const pixels = IMAGE_SIDE * IMAGE_SIDE;
  const count = feedbackImages(used.length, weight);
  const images = new Uint8Array(count * pixels);
  const labels = new Uint8Array(count);
  let at = 0;
  used.forEach(({ example, label }, i) => {
    const image = examplePixels(example);
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
