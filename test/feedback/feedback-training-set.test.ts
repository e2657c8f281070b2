import { describe, expect, it } from 'vitest';
import {
  feedbackImages,
  feedbackRepeats,
  feedbackTrainingSet,
  usableFeedback,
} from '../../src/feedback/feedback-training-set.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import { createRandom } from '../../src/ml/random.js';
import { feedbackExample, imagesInSplit } from '../helpers/feedback-examples.js';

const CLASSES = ['zero', 'one', 'two'];

describe('feedbackRepeats and feedbackImages: how a weight oversamples the feedback', () => {
  it('when the weight is whole, then every example is repeated that often', () => {
    expect(Array.from({ length: 5 }, (_, i) => feedbackRepeats(i, 1))).toEqual([1, 1, 1, 1, 1]);
    expect(Array.from({ length: 3 }, (_, i) => feedbackRepeats(i, 20))).toEqual([20, 20, 20]);
    expect(feedbackImages(80, 20)).toBe(1600);
    expect(feedbackImages(0, 100)).toBe(0);
  });

  it('when the weight has a fraction, then it is spread evenly: 2.5 over 10 examples is 25 images, every other one thrice', () => {
    const repeats = Array.from({ length: 10 }, (_, i) => feedbackRepeats(i, 2.5));
    expect(repeats).toEqual([3, 2, 3, 2, 3, 2, 3, 2, 3, 2]);
    expect(feedbackImages(10, 2.5)).toBe(25);
    expect(Array.from({ length: 6 }, (_, i) => feedbackRepeats(i, 1.3))).toEqual([1, 2, 1, 1, 2, 1]);
  });

  it('when any number of examples meets any weight, then the repeats add up to feedbackImages, examples x weight rounded', () => {
    const random = createRandom(7);
    for (let trial = 0; trial < 500; trial++) {
      const n = Math.floor(random() * 300);
      const weight = trial % 5 === 0 ? 1 + Math.floor(random() * 100) : 1 + random() * 99;
      const repeats = Array.from({ length: n }, (_, i) => feedbackRepeats(i, weight));
      const whole = Math.floor(weight);
      expect(repeats.every((r) => r === whole || r === whole + 1)).toBe(true);
      const sum = repeats.reduce((total, r) => total + r, 0);
      expect(sum, `${n} x ${weight}`).toBe(feedbackImages(n, weight));
      expect(Math.abs(sum - n * weight)).toBeLessThanOrEqual(0.5 + 1e-9);
    }
  });
});

describe('feedbackTrainingSet: stored examples to the images a run trains on', () => {
  const [a, b, c] = imagesInSplit('train', 3);
  const [held] = imagesInSplit('test', 1);
  const stored = [
    feedbackExample(a!, 'two', 1),
    feedbackExample(held!, 'one', 2),
    feedbackExample(b!, 'cat', 3),
    feedbackExample(c!, 'zero', 4),
  ];

  it("when examples are of the train split and the run's classes, then each is labelled by its class's index and repeated by the weight, in id order whatever the listing's", () => {
    const { set, counts } = feedbackTrainingSet(stored, CLASSES, 2);
    expect(counts).toEqual({ examples: 2, images: 4, otherClasses: 1, heldOut: 1 });
    expect(set).toMatchObject({ count: 4, height: 28, width: 28 });
    expect(set.images.length).toBe(4 * IMAGE_PIXELS);
    const [first, second] = [stored[0]!, stored[3]!].sort((x, y) => x.id.localeCompare(y.id));
    const pixelsOf = { [stored[0]!.id]: a!, [stored[3]!.id]: c! };
    const image = (i: number) => Buffer.from(set.images.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS));
    for (const [i, example] of [first, first, second, second].entries()) {
      expect(image(i).equals(Buffer.from(pixelsOf[example!.id]!)), `image ${i}`).toBe(true);
      expect(set.labels[i]).toBe(CLASSES.indexOf(example!.class));
    }
    const reversed = feedbackTrainingSet([...stored].reverse(), CLASSES, 2).set;
    expect(Buffer.from(reversed.images).equals(Buffer.from(set.images))).toBe(true);
    expect(usableFeedback(stored, CLASSES)).toBe(2);
  });

  it("when an example's class is not the run's, or it is in the test split, then it is left out and counted as such", () => {
    const { set, counts } = feedbackTrainingSet(stored, ['0', '1'], 1);
    expect(counts).toEqual({ examples: 0, images: 0, otherClasses: 3, heldOut: 1 });
    expect(set.count).toBe(0);
    expect(set.images.length).toBe(0);
  });

  it('when there is no feedback, then the set is empty; a weight below 1 is a RangeError', () => {
    expect(feedbackTrainingSet([], CLASSES, 20).counts).toEqual({
      examples: 0,
      images: 0,
      otherClasses: 0,
      heldOut: 0,
    });
    expect(() => feedbackTrainingSet(stored, CLASSES, 0.5)).toThrow(RangeError);
    expect(() => feedbackTrainingSet(stored, CLASSES, Number.NaN)).toThrow(RangeError);
  });

  it('when the weight has a fraction, then the images are examples x weight, rounded', () => {
    const many = imagesInSplit('train', 10, 100).map((pixels, i) => feedbackExample(pixels, 'one', i));
    const { set, counts } = feedbackTrainingSet(many, CLASSES, 2.5);
    expect(counts).toMatchObject({ examples: 10, images: 25 });
    expect(set.count).toBe(25);
    expect([...set.labels].every((label) => label === 1)).toBe(true);
  });
});
