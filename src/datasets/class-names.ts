import { classNameSchema } from '../ml/data/dataset.js';
import { formatCount, invalidDataset, shownName } from './dataset-errors.js';

/**
 * Checks the class names an upload gives (folders, classes.txt, ?classes=): each safe text, none
 * twice, 2 to `maxClasses` of them. `where(i)` names the place of name i in a message
 * ("classes.txt line 3"); `origin` the whole list ("classes.txt").
 */
export function checkClassNames(
  names: readonly string[],
  maxClasses: number,
  origin: string,
  where: (index: number) => string,
): string[] {
  checkClassCount(names.length, maxClasses, origin);
  const seen = new Map<string, number>();
  names.forEach((name, index) => {
    const parsed = classNameSchema.safeParse(name);
    if (!parsed.success) {
      const reason = parsed.error.issues.map((issue) => issue.message).join('; ');
      throw invalidDataset(`${where(index)}: ${shownName(name)} is not a valid class name: ${reason}`);
    }
    const before = seen.get(name);
    if (before !== undefined) {
      throw invalidDataset(
        `${where(index)}: class ${shownName(name)} is named twice (also ${where(before)})`,
      );
    }
    seen.set(name, index);
  });
  return [...names];
}

export function checkClassCount(count: number, maxClasses: number, origin: string): void {
  if (count < 2) {
    throw invalidDataset(
      `one class only: ${origin} gives ${count} class(es); a classifier needs at least 2 classes`,
    );
  }
  if (count > maxClasses) {
    throw invalidDataset(
      `${origin} gives ${formatCount(count)} classes, more than the limit of ${maxClasses} (DATASET_MAX_CLASSES)`,
    );
  }
}

/**
 * Classes for labels that come without names (idx without classes.txt, CSV without ?classes=):
 * the distinct values present, ascending, named by their numbers, and the labels rewritten in
 * place to 0..K-1. Digits 0..9 stay 0..9; letters labelled 1..26 (EMNIST) become 0..25 named '1'..'26'.
 */
export function classesFromLabelValues(
  labelSets: Uint8Array[],
  maxClasses: number,
  origin: string,
): string[] {
  const present = new Array<boolean>(256).fill(false);
  for (const labels of labelSets) for (let i = 0; i < labels.length; i++) present[labels[i]!] = true;
  const values = present.flatMap((isPresent, value) => (isPresent ? [value] : []));
  checkClassCount(values.length, maxClasses, origin);
  const remap = new Uint8Array(256);
  values.forEach((value, label) => (remap[value] = label));
  for (const labels of labelSets) for (let i = 0; i < labels.length; i++) labels[i] = remap[labels[i]!]!;
  return values.map(String);
}

/** Codepoint order, as Python sorts the folder names of torchvision's ImageFolder. */
export function compareCodepoints(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}
