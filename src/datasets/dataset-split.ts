import { createRandom, shuffleInPlace } from '../ml/random.js';
import { invalidDataset, shownName } from './dataset-errors.js';
import { gather, type LabelledImages } from './labelled-images.js';

/** The share of each class held out for test when an upload does not split its data itself. */
export const HELD_OUT_FRACTION = 1 / 7;
/**
 * Fixed, so the same upload always gives the same split and the same training order (issue 15).
 * A held-out image must never change sides between two uploads of the same files.
 */
const SPLIT_SEED = 15;

export interface SplitImages {
  train: LabelledImages;
  test: LabelledImages;
}

/**
 * The training and test sets a dataset stores. Without a test set of the upload's own, a seeded
 * 1/7 of each class (at least one image) is held out. The training set is then shuffled, seeded:
 * training takes validation from the end of the file, which must be a mix of every class, not the
 * last class folder.
 */
export function splitForStorage(
  train: LabelledImages,
  test: LabelledImages | null,
  classes: readonly string[],
): SplitImages {
  const random = createRandom(SPLIT_SEED);
  let split: SplitImages;
  if (test) {
    split = { train, test };
  } else {
    const { trainIndices, testIndices } = holdOut(train.labels, classes, random);
    split = { train: gather(train, trainIndices), test: gather(train, testIndices) };
  }
  const order = shuffleInPlace(
    Uint32Array.from({ length: split.train.count }, (_, i) => i),
    random,
  );
  return { train: gather(split.train, order), test: split.test };
}

function holdOut(labels: Uint8Array, classes: readonly string[], random: () => number) {
  const byClass = classes.map(() => [] as number[]);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]!]!.push(i);
  const trainIndices: number[] = [];
  const testIndices: number[] = [];
  byClass.forEach((indices, label) => {
    if (indices.length < 2) {
      throw invalidDataset(
        `class ${shownName(classes[label]!)} has ${indices.length} usable image(s): a class needs at least 2, ` +
          'one to train on and one held out for test',
      );
    }
    const shuffled = shuffleInPlace(Uint32Array.from(indices), random);
    const held = Math.max(1, Math.round(indices.length * HELD_OUT_FRACTION));
    for (let i = 0; i < shuffled.length; i++) (i < held ? testIndices : trainIndices).push(shuffled[i]!);
  });
  // The test file in upload order: a held-out image keeps its place relative to the others.
  testIndices.sort((a, b) => a - b);
  return { trainIndices, testIndices };
}
