import { formatCount, invalidDataset, shownName } from './dataset-errors.js';
import type { SkippedFile } from './dataset-record.js';
import { countPerClass, type LabelledImages } from './labelled-images.js';

/** More than this share of the images unusable, and the upload is refused rather than half used. */
export const MAX_SKIPPED_SHARE = 0.1;

/** Some unusable images are skipped and listed; too many mean the upload is not what it seems. */
export function checkSkippedShare(failed: SkippedFile[], candidates: number, what: string): void {
  if (failed.length === 0) return;
  if (failed.length === candidates) {
    throw invalidDataset(
      `none of the ${formatCount(candidates)} ${what} could be used; the first, ${shownName(failed[0]!.file)}: ` +
        failed[0]!.reason,
    );
  }
  if (failed.length > MAX_SKIPPED_SHARE * candidates) {
    const examples = failed
      .slice(0, 3)
      .map((f) => `${shownName(f.file)}: ${f.reason}`)
      .join('; ');
    throw invalidDataset(
      `${formatCount(failed.length)} of ${formatCount(candidates)} ${what} could not be used, more than ` +
        `${MAX_SKIPPED_SHARE * 100}% (${examples})`,
    );
  }
}

/**
 * Every class has training images: a class the model could never learn is a mistake in the
 * upload (a misnamed folder, a wrong ?classes= list), not something to train around.
 */
export function checkNoEmptyClasses(train: LabelledImages, classes: readonly string[], where: string): void {
  const counts = countPerClass(train.labels, classes.length);
  const empty = classes.filter((_, label) => counts[label] === 0);
  if (empty.length === 0) return;
  const named = empty.slice(0, 10).map((name) => shownName(name));
  const more = empty.length > 10 ? ` and ${formatCount(empty.length - 10)} more` : '';
  throw invalidDataset(`empty classes: ${named.join(', ')}${more} have no images ${where}`);
}
