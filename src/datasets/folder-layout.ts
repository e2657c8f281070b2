import { checkClassNames, compareCodepoints } from './class-names.js';
import { invalidDataset, shownName } from './dataset-errors.js';
import type { SkippedFile } from './dataset-record.js';
import { isImageName } from './entry-names.js';

export type Split = 'train' | 'test';

export interface PlannedImage {
  /** Index of the entry in the list of names given. */
  entry: number;
  name: string;
  label: number;
  split: Split;
}

export interface FolderPlan {
  /** Class folder names in codepoint order: label i is classes[i]. */
  classes: string[];
  /** Candidate images, training ones first, then by class and path: the same for any entry order. */
  images: PlannedImage[];
  /** Whether the upload has train/ and test/ folders of its own. */
  hasTestSplit: boolean;
  /** Files that are not images, or not in a class folder. */
  skipped: SkippedFile[];
}

const SPLITS = new Set(['train', 'test']);

/**
 * The folder-per-class layout of torchvision's ImageFolder, from the entries' names alone:
 * `<class>/<any depth>/<file>.png|.jpg|.jpeg`, or `train/<class>/...` and `test/<class>/...`,
 * optionally inside one wrapping folder (a zip made by "compress folder"). Class names are the
 * folder names (NFC, as macOS zips store them decomposed), sorted by codepoint as ImageFolder does.
 */
export function planFolders(names: readonly string[], maxClasses: number): FolderPlan {
  const paths = stripWrapper(names.map((name) => name.split('/')));
  const tops = new Set(paths.filter((parts) => parts.length > 1).map((parts) => parts[0]!));
  const hasSplitFolders = tops.has('train') && [...tops].every((top) => SPLITS.has(top));
  const classDepth = hasSplitFolders ? 1 : 0;
  const skipped: SkippedFile[] = [];
  const found: { entry: number; className: string; split: Split }[] = [];
  paths.forEach((parts, entry) => {
    const name = names[entry]!;
    if (!isImageName(name)) return skipped.push({ file: name, reason: 'not a PNG or JPEG file' });
    if (parts.length < classDepth + 2) {
      const where = hasSplitFolders ? 'train/<class>/ or test/<class>/' : '<class>/';
      return skipped.push({ file: name, reason: `not inside a class folder (${where})` });
    }
    const split: Split = hasSplitFolders && parts[0] === 'test' ? 'test' : 'train';
    found.push({ entry, className: parts[classDepth]!.normalize('NFC'), split });
  });
  const classes = [...new Set(found.map((image) => image.className))].sort(compareCodepoints);
  if (classes.length === 0) {
    throw invalidDataset(
      'the zip holds no images in class folders: expected <class>/<file>.png|.jpg (a folder per class, ' +
        'optionally under train/ and test/), or MNIST idx files',
    );
  }
  checkClassNames(
    classes,
    maxClasses,
    'the zip’s class folders',
    (i) => `class folder ${shownName(classes[i]!)}`,
  );
  const labels = new Map(classes.map((name, label) => [name, label]));
  if (hasSplitFolders) checkTestClasses(found, classes);
  const images = found
    .map(({ entry, className, split }) => ({
      entry,
      name: names[entry]!,
      label: labels.get(className)!,
      split,
    }))
    .sort(
      (a, b) =>
        Number(a.split === 'test') - Number(b.split === 'test') ||
        a.label - b.label ||
        compareCodepoints(a.name, b.name),
    );
  return { classes, images, hasTestSplit: hasSplitFolders && tops.has('test'), skipped };
}

/** Drops one folder that holds everything, as long as there are folders inside it. */
function stripWrapper(paths: string[][]): string[][] {
  const first = paths[0]?.[0];
  const wrapped =
    first !== undefined &&
    paths.every((parts) => parts.length > 1 && parts[0] === first) &&
    paths.some((parts) => parts.length > 2);
  return wrapped ? paths.map((parts) => parts.slice(1)) : paths;
}

function checkTestClasses(found: { className: string; split: Split }[], classes: string[]): void {
  const inTrain = new Set(found.filter((image) => image.split === 'train').map((image) => image.className));
  const testOnly = classes.filter((name) => !inTrain.has(name));
  if (testOnly.length > 0) {
    throw invalidDataset(
      `empty classes: ${testOnly
        .slice(0, 10)
        .map((name) => shownName(name))
        .join(', ')} ` + 'have images in test/ but none in train/',
    );
  }
}
