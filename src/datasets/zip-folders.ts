import { ImageInputError } from '../ml/image-preprocess.js';
import { IMAGE_PIXELS } from '../ml/image-shape.js';
import { DECODE_CONCURRENCY, forEachBounded } from './bounded-loop.js';
import { compareCodepoints } from './class-names.js';
import { formatCount, invalidDataset } from './dataset-errors.js';
import type { SkippedFile } from './dataset-record.js';
import { checkNoEmptyClasses, checkSkippedShare } from './dataset-checks.js';
import { planFolders, type PlannedImage, type Split } from './folder-layout.js';
import { gather, type LabelledImages } from './labelled-images.js';
import { encodedToMnist } from './mnist-pixels.js';
import type { ParsedDataset } from './parsed-dataset.js';
import type { ZipArchive, ZipFileEntry } from './zip-archive.js';

/** A bigger file is no digit, symbol or small photo; it is skipped without being read. */
export const MAX_IMAGE_BYTES = 16 * 1024 * 1024;

/** A zip of class folders, each image decoded and preprocessed, a few at a time. */
export async function readFolderDataset(
  zip: ZipArchive,
  files: ZipFileEntry[],
  maxClasses: number,
  signal?: AbortSignal,
): Promise<ParsedDataset> {
  const plan = planFolders(
    files.map((file) => file.name),
    maxClasses,
  );
  const { images } = plan;
  const pixels = new Uint8Array(images.length * IMAGE_PIXELS);
  const failures: (string | undefined)[] = new Array(images.length);
  await forEachBounded(
    images.length,
    DECODE_CONCURRENCY,
    async (i) => {
      const file = files[images[i]!.entry]!;
      if (file.size > MAX_IMAGE_BYTES) {
        failures[i] = `larger than ${formatCount(MAX_IMAGE_BYTES)} bytes`;
        return;
      }
      const bytes = await zip.read(file);
      try {
        pixels.set(await encodedToMnist(bytes), i * IMAGE_PIXELS);
      } catch (error) {
        if (!(error instanceof ImageInputError)) throw error;
        failures[i] = error.message;
      }
    },
    signal,
  );
  const failed: SkippedFile[] = images.flatMap((image, i) =>
    failures[i] === undefined ? [] : [{ file: image.name, reason: failures[i] }],
  );
  checkSkippedShare(failed, images.length, 'images');
  const usable = (split: Split) => images.flatMap((image, i) => (keep(image, split, failures[i]) ? [i] : []));
  const all = { count: images.length, pixels, labels: Uint8Array.from(images, (image) => image.label) };
  const train = gather(all, usable('train'));
  checkNoEmptyClasses(train, plan.classes, plan.hasTestSplit ? 'in train/' : 'that could be used');
  let test: LabelledImages | null = null;
  if (plan.hasTestSplit) {
    test = gather(all, usable('test'));
    if (test.count === 0) throw invalidDataset('test/ holds no usable images: fill it, or leave it out');
  }
  const skipped = [...plan.skipped, ...failed].sort((a, b) => compareCodepoints(a.file, b.file));
  return { format: 'folders', classes: plan.classes, train, test, skipped };
}

function keep(image: PlannedImage, split: Split, failure: string | undefined): boolean {
  return image.split === split && failure === undefined;
}
