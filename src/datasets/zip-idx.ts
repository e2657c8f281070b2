import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { IdxFormatError, parseIdxImages, parseIdxLabels, type IdxImages } from '../ml/data/idx.js';
import { ImageInputError } from '../ml/image-preprocess.js';
import { IMAGE_PIXELS, IMAGE_SIDE } from '../ml/image-shape.js';
import { errorMessage } from '../fs-durable.js';
import { DECODE_CONCURRENCY, forEachBounded } from './bounded-loop.js';
import { checkClassNames, classesFromLabelValues } from './class-names.js';
import { datasetTooLarge, formatCount, invalidDataset, shownName } from './dataset-errors.js';
import type { DatasetLimits } from './dataset-limits.js';
import type { SkippedFile } from './dataset-record.js';
import { checkNoEmptyClasses, checkSkippedShare } from './dataset-checks.js';
import { baseName } from './entry-names.js';
import { gather, type LabelledImages } from './labelled-images.js';
import { rawToMnist } from './mnist-pixels.js';
import type { ParsedDataset } from './parsed-dataset.js';
import type { ZipArchive, ZipFileEntry } from './zip-archive.js';

const gunzipAsync = promisify(gunzip);

/** `train-images-idx3-ubyte`, `t10k-labels-idx1-ubyte.gz`, Kaggle's `train-images.idx3-ubyte`. */
const IDX_NAME = /^(.+?)[-.](images[-.]idx3|labels[-.]idx1)[-.]ubyte(\.gz)?$/i;
const CLASSES_TXT = 'classes.txt';
/** 256 names of at most 64 characters, in UTF-8, with room to spare. */
const MAX_CLASSES_TXT_BYTES = 256 * 1024;

type Role = 'trainImages' | 'trainLabels' | 'testImages' | 'testLabels';

export function isIdxName(name: string): boolean {
  return IDX_NAME.test(baseName(name));
}

/**
 * A zip of MNIST idx files (raw or gzipped; train and optionally t10k/test), with class names from
 * an optional classes.txt (the name of label i on line i + 1). 28x28 images are stored as they
 * are, as /predict takes 28x28 numbers; images of another size go through the image preprocessing.
 */
export async function readIdxDataset(
  zip: ZipArchive,
  files: ZipFileEntry[],
  limits: DatasetLimits,
  signal?: AbortSignal,
): Promise<ParsedDataset> {
  const { roles, classesFile, skipped } = sortFiles(files);
  const gunzipBudget = { left: limits.maxUncompressedBytes };
  const read = async (file: ZipFileEntry) => inflated(file, await zip.read(file), gunzipBudget);
  const parse = async (images: ZipFileEntry, labels: ZipFileEntry) =>
    pair(images, await read(images), labels, await read(labels));
  const train = await parse(roles.trainImages!, roles.trainLabels!);
  const test = roles.testImages ? await parse(roles.testImages, roles.testLabels!) : null;
  const total = train.images.count + (test?.images.count ?? 0);
  if (total > limits.maxFiles) {
    throw datasetTooLarge(
      `the idx files hold ${formatCount(total)} images, more than the limit of ${formatCount(limits.maxFiles)} (DATASET_MAX_FILES)`,
    );
  }
  const labelSets = test ? [train.labels, test.labels] : [train.labels];
  let classes: string[];
  if (classesFile) {
    classes = parseClassesTxt(await zip.read(classesFile), limits.maxClasses);
    for (const set of test ? [train, test] : [train]) checkLabelsNamed(set, classes);
  } else {
    classes = classesFromLabelValues(labelSets, limits.maxClasses, 'the idx label files');
  }
  const trainSet = await toMnist(train, skipped, signal);
  const testSet = test ? await toMnist(test, skipped, signal) : null;
  checkNoEmptyClasses(trainSet, classes, `in ${shownName(train.imagesName)}`);
  return { format: 'idx', classes, train: trainSet, test: testSet, skipped };
}

function sortFiles(files: ZipFileEntry[]) {
  const roles: Partial<Record<Role, ZipFileEntry>> = {};
  const classesFiles: ZipFileEntry[] = [];
  const skipped: SkippedFile[] = [];
  for (const file of files) {
    const base = baseName(file.name);
    const match = IDX_NAME.exec(base);
    if (match) {
      const role = roleOf(file.name, match[1]!, match[2]!);
      const taken = roles[role];
      if (taken) {
        throw invalidDataset(
          `two idx files hold the same data: ${shownName(taken.name)} and ${shownName(file.name)}`,
        );
      }
      roles[role] = file;
    } else if (base.toLowerCase() === CLASSES_TXT) {
      classesFiles.push(file);
    } else {
      skipped.push({
        file: file.name,
        reason: 'not part of an idx dataset (*-images-idx3-ubyte, *-labels-idx1-ubyte, classes.txt)',
      });
    }
  }
  if (classesFiles.length > 1) {
    throw invalidDataset(`the zip holds ${classesFiles.length} classes.txt files: keep one`);
  }
  if (!roles.trainImages || !roles.trainLabels) {
    throw invalidDataset(
      `the zip has idx files but not ${roles.trainImages ? 'train-labels-idx1-ubyte' : 'train-images-idx3-ubyte'} ` +
        '(raw or .gz): training images and their labels are both needed',
    );
  }
  if (Boolean(roles.testImages) !== Boolean(roles.testLabels)) {
    const [has, lacks] = roles.testImages
      ? [roles.testImages, 't10k-labels-idx1-ubyte']
      : [roles.testLabels!, 't10k-images-idx3-ubyte'];
    throw invalidDataset(
      `the zip has ${shownName(has.name)} but not ${lacks}: test images need their labels`,
    );
  }
  return { roles, classesFile: classesFiles[0], skipped };
}

function roleOf(name: string, prefix: string, kind: string): Role {
  const images = kind.toLowerCase().startsWith('images');
  if (/(^|[-_.])train$/i.test(prefix)) return images ? 'trainImages' : 'trainLabels';
  if (/(^|[-_.])(t10k|test)$/i.test(prefix)) return images ? 'testImages' : 'testLabels';
  throw invalidDataset(
    `${shownName(name)}: cannot tell training from test data by its name; name it train-… or t10k-… ` +
      '(train-images-idx3-ubyte, t10k-images-idx3-ubyte)',
  );
}

/** Gunzips by content, as the idx reader does, with all gzipped entries sharing one output bound. */
async function inflated(file: ZipFileEntry, bytes: Buffer, budget: { left: number }): Promise<Buffer> {
  if (!(bytes[0] === 0x1f && bytes[1] === 0x8b)) return bytes;
  let out: Buffer;
  try {
    out = await gunzipAsync(bytes, { maxOutputLength: Math.max(1, budget.left) });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw datasetTooLarge(
        `${shownName(file.name)} gunzips to more than the ${formatCount(budget.left)} bytes left of ` +
          'DATASET_MAX_UNCOMPRESSED_BYTES',
        error,
      );
    }
    throw invalidDataset(
      `${shownName(file.name)} starts like a gzip file but does not decompress: ${errorMessage(error)}`,
      error,
    );
  }
  budget.left -= out.length;
  return out;
}

interface IdxPair {
  imagesName: string;
  labelsName: string;
  images: IdxImages;
  labels: Uint8Array;
}

function pair(imagesFile: ZipFileEntry, images: Buffer, labelsFile: ZipFileEntry, labels: Buffer): IdxPair {
  try {
    const parsedImages = parseIdxImages(images, shownName(imagesFile.name));
    const parsedLabels = parseIdxLabels(labels, shownName(labelsFile.name));
    if (parsedImages.count !== parsedLabels.count) {
      throw invalidDataset(
        `${shownName(imagesFile.name)} has ${formatCount(parsedImages.count)} images but ` +
          `${shownName(labelsFile.name)} has ${formatCount(parsedLabels.count)} labels`,
      );
    }
    // A copy: labels are rewritten to 0..K-1 in place, and the view shares the entry's buffer.
    return {
      imagesName: imagesFile.name,
      labelsName: labelsFile.name,
      images: parsedImages,
      labels: parsedLabels.labels.slice(),
    };
  } catch (error) {
    if (error instanceof IdxFormatError) throw invalidDataset(error.message, error);
    throw error;
  }
}

function parseClassesTxt(bytes: Buffer, maxClasses: number): string[] {
  if (bytes.length > MAX_CLASSES_TXT_BYTES) {
    throw invalidDataset(
      `classes.txt has ${formatCount(bytes.length)} bytes: too long for a list of class names`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    throw invalidDataset('classes.txt is not UTF-8 text', error);
  }
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  return checkClassNames(lines, maxClasses, 'classes.txt', (i) => `classes.txt line ${i + 1}`);
}

function checkLabelsNamed(set: IdxPair, classes: string[]): void {
  const index = set.labels.findIndex((label) => label >= classes.length);
  if (index < 0) return;
  throw invalidDataset(
    `${shownName(set.labelsName)}: label ${set.labels[index]} of image ${index} ` +
      `has no name: classes.txt names ${classes.length} classes (labels 0 to ${classes.length - 1})`,
  );
}

/** 28x28 images as they are; other sizes preprocessed one by one, failures skipped and listed. */
async function toMnist(set: IdxPair, skipped: SkippedFile[], signal?: AbortSignal): Promise<LabelledImages> {
  const { images, labels, imagesName } = set;
  if (images.rows === IMAGE_SIDE && images.cols === IMAGE_SIDE) {
    return { count: images.count, pixels: images.pixels, labels };
  }
  const size = images.rows * images.cols;
  const pixels = new Uint8Array(images.count * IMAGE_PIXELS);
  const usable = new Uint8Array(images.count);
  const failures: SkippedFile[] = [];
  await forEachBounded(
    images.count,
    DECODE_CONCURRENCY,
    async (i) => {
      const image = images.pixels.subarray(i * size, (i + 1) * size);
      try {
        pixels.set(await rawToMnist(image, images.rows, images.cols), i * IMAGE_PIXELS);
        usable[i] = 1;
      } catch (error) {
        if (!(error instanceof ImageInputError)) throw error;
        failures.push({ file: `${imagesName} image ${i}`, reason: error.message });
      }
    },
    signal,
  );
  failures.sort((a, b) => a.file.localeCompare(b.file, 'en', { numeric: true }));
  checkSkippedShare(
    failures,
    images.count,
    `${images.rows}x${images.cols} images in ${shownName(imagesName)}`,
  );
  for (const failure of failures) skipped.push(failure);
  const kept = Array.from(usable.keys()).filter((i) => usable[i] === 1);
  return gather({ count: images.count, pixels, labels }, kept);
}
