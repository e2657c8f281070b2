import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FileDatasetStore } from '../../src/datasets/file-dataset-store.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import { imageFile, labelFile, sameBytes } from '../helpers/idx-files.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { zipArchive, type ZipEntrySpec } from '../helpers/zip-archive.js';
import { expectNothingStored, ingestBytes, storedFiles, mnistDigits, refusal } from './dataset-fixtures.js';

const root = useTempDir('dataset-idx');
let store: FileDatasetStore;
let run = 0;
/** 21 real digits: seven each of 3, 5 and 8, in that order, and their labels. */
let digits: Uint8Array[];
let labels: number[];

beforeAll(async () => {
  digits = [...(await mnistDigits(3, 7)), ...(await mnistDigits(5, 7)), ...(await mnistDigits(8, 7))];
  labels = [...Array(7).fill(3), ...Array(7).fill(5), ...Array(7).fill(8)];
});

beforeEach(() => {
  store = new FileDatasetStore(path.join(root, `store-${++run}`));
});

/** An idx image file of the given 28x28 digits. */
function images(of: Uint8Array[]): Buffer {
  return imageFile(of.length, 28, 28, (image, offset) => of[image]![offset % IMAGE_PIXELS]!);
}

/** Index in `digits` of each stored image: the pixels are stored as they came. */
function origins(set: { count: number; pixels: Uint8Array }): number[] {
  return Array.from({ length: set.count }, (_, i) =>
    digits.findIndex((d) => sameBytes(d, set.pixels.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS))),
  );
}

describe('a zip of MNIST idx files', () => {
  it('when it has train and t10k files and a classes.txt, then the pixels are stored as they are, with the names', async () => {
    const entries: ZipEntrySpec[] = [
      { name: 'train-images-idx3-ubyte', data: images(digits.slice(0, 18)) },
      { name: 'train-labels-idx1-ubyte', data: labelFile(labels.slice(0, 18)) },
      { name: 't10k-images-idx3-ubyte', data: images(digits.slice(18)) },
      { name: 't10k-labels-idx1-ubyte', data: labelFile(labels.slice(18)) },
      { name: 'classes.txt', data: '0\n1\n2\nthree\n4\nfive\n6\n7\neight\r\n\n' },
    ];
    // Labels 3, 5, 8 named by classes.txt: the other names have no images.
    const error = await refusal(ingestBytes(store, zipArchive(entries)), 400, 'invalid_dataset');
    expect(error.message).toBe(
      'empty classes: "0", "1", "2", "4", "6", "7" have no images in "train-images-idx3-ubyte"',
    );
    // With a label file using 0..2 instead, every class has images.
    const remapped = (ls: number[]) => ls.map((l) => ({ 3: 0, 5: 1, 8: 2 })[l]!);
    entries[1] = { name: 'train-labels-idx1-ubyte', data: labelFile(remapped(labels.slice(0, 18))) };
    entries[3] = { name: 't10k-labels-idx1-ubyte', data: labelFile(remapped(labels.slice(18))) };
    entries[4] = { name: 'classes.txt', data: 'three\nfive\neight\n' };
    const record = await ingestBytes(store, zipArchive(entries));
    expect(record).toMatchObject({
      format: 'idx',
      classes: ['three', 'five', 'eight'],
      counts: {
        train: 18,
        test: 3,
        perClass: [
          { class: 'three', train: 7, test: 0 },
          { class: 'five', train: 7, test: 0 },
          { class: 'eight', train: 4, test: 3 },
        ],
      },
    });
    const files = await storedFiles(store, record.id);
    expect(files.classes).toBe('three\nfive\neight\n');
    expect(origins(files.testImages)).toEqual([18, 19, 20]);
    const trainOrigins = origins(files.trainImages);
    expect([...trainOrigins].sort((a, b) => a - b)).toEqual(Array.from({ length: 18 }, (_, i) => i));
    expect(trainOrigins).not.toEqual([...trainOrigins].sort((a, b) => a - b));
    trainOrigins.forEach((from, i) =>
      expect(files.trainLabels.labels[i]).toBe({ 3: 0, 5: 1, 8: 2 }[labels[from]!]),
    );
  });

  it('when its files are gzipped, in a folder, with no test files and no classes.txt, then labels present become the classes', async () => {
    const entries: ZipEntrySpec[] = [
      { name: 'emnist/emnist-train-images-idx3-ubyte.gz', data: gzipSync(images(digits)) },
      { name: 'emnist/emnist-train-labels-idx1-ubyte.gz', data: gzipSync(labelFile(labels)) },
      { name: 'emnist/README', data: 'about these files' },
    ];
    const record = await ingestBytes(store, zipArchive(entries));
    expect(record.classes).toEqual(['3', '5', '8']);
    expect(record.counts.perClass).toEqual([
      { class: '3', train: 6, test: 1 },
      { class: '5', train: 6, test: 1 },
      { class: '8', train: 6, test: 1 },
    ]);
    expect(record.skipped).toEqual([
      {
        file: 'emnist/README',
        reason: 'not part of an idx dataset (*-images-idx3-ubyte, *-labels-idx1-ubyte, classes.txt)',
      },
    ]);
    const files = await storedFiles(store, record.id);
    expect(files.classes).toBe('3\n5\n8\n');
    expect(new Set(files.trainLabels.labels)).toEqual(new Set([0, 1, 2]));
    // Each stored image keeps its label, remapped: 3 -> 0, 5 -> 1, 8 -> 2.
    origins(files.testImages).forEach((from, i) =>
      expect(files.testLabels.labels[i]).toBe({ 3: 0, 5: 1, 8: 2 }[labels[from]!]),
    );
  });

  it("when it uses Kaggle's names (train-images.idx3-ubyte), then they are recognised", async () => {
    const entries: ZipEntrySpec[] = [
      { name: 'train-images.idx3-ubyte', data: images(digits) },
      { name: 'train-labels.idx1-ubyte', data: labelFile(labels) },
    ];
    expect((await ingestBytes(store, zipArchive(entries))).counts.train).toBe(18);
  });

  it('when its images are not 28x28, then each goes through the image preprocessing', async () => {
    // The digits drawn at 56x56 (each pixel doubled): preprocessed, they are MNIST-like 28x28 again.
    const big = digits.map((d) => {
      const out = new Uint8Array(56 * 56);
      for (let y = 0; y < 56; y++)
        for (let x = 0; x < 56; x++) out[y * 56 + x] = d[(y >> 1) * 28 + (x >> 1)]!;
      return out;
    });
    const entries: ZipEntrySpec[] = [
      { name: 'train-images-idx3-ubyte', data: imageFile(21, 56, 56, (i, o) => big[i]![o % (56 * 56)]!) },
      { name: 'train-labels-idx1-ubyte', data: labelFile(labels) },
    ];
    const record = await ingestBytes(store, zipArchive(entries));
    expect(record.counts.train + record.counts.test).toBe(21);
    const files = await storedFiles(store, record.id);
    expect(files.trainImages).toMatchObject({ rows: 28, cols: 28, count: 18 });
    expect(Math.max(...files.trainImages.pixels.subarray(0, IMAGE_PIXELS))).toBe(255);
  });
});

describe('a zip of idx files that is no dataset', () => {
  const train = () => [
    { name: 'train-images-idx3-ubyte', data: images(digits) },
    { name: 'train-labels-idx1-ubyte', data: labelFile(labels) },
  ];

  it.each([
    [
      'a label with no name in classes.txt',
      () => [...train(), { name: 'classes.txt', data: 'a\nb\nc\n' }],
      '"train-labels-idx1-ubyte": label 3 of image 0 has no name: classes.txt names 3 classes (labels 0 to 2)',
    ],
    [
      'a class name that is not safe text in classes.txt',
      () => [...train(), { name: 'classes.txt', data: '0\n1\n2\n<script>\n' }],
      /^classes.txt line 4: "<script>" is not a valid class name/,
    ],
    [
      'a class named twice in classes.txt',
      () => [...train(), { name: 'classes.txt', data: 'a\nb\na\n' }],
      'classes.txt line 3: class "a" is named twice (also classes.txt line 1)',
    ],
    [
      'labels of one value only',
      () => [train()[0]!, { name: 'train-labels-idx1-ubyte', data: labelFile(labels.map(() => 4)) }],
      'one class only: the idx label files gives 1 class(es); a classifier needs at least 2 classes',
    ],
    [
      'images and labels of different counts',
      () => [train()[0]!, { name: 'train-labels-idx1-ubyte', data: labelFile(labels.slice(1)) }],
      '"train-images-idx3-ubyte" has 21 images but "train-labels-idx1-ubyte" has 20 labels',
    ],
    [
      'no training labels',
      () => [train()[0]!],
      /^the zip has idx files but not train-labels-idx1-ubyte \(raw or .gz\)/,
    ],
    [
      'test images without test labels',
      () => [...train(), { name: 't10k-images-idx3-ubyte', data: images(digits) }],
      'the zip has "t10k-images-idx3-ubyte" but not t10k-labels-idx1-ubyte: test images need their labels',
    ],
    [
      'a truncated image file',
      () => [{ name: 'train-images-idx3-ubyte', data: images(digits).subarray(0, 1000) }, train()[1]!],
      /^"train-images-idx3-ubyte": truncated data: header says 21 images of 28 x 28/,
    ],
    [
      'a label file that is not one',
      () => [train()[0]!, { name: 'train-labels-idx1-ubyte', data: images(digits) }],
      '"train-labels-idx1-ubyte": expected a label file (magic 0x00000801), found 0x00000803 (an image file)',
    ],
    [
      'a file that is neither train nor test',
      () => [...train(), { name: 'extra-images-idx3-ubyte', data: images(digits) }],
      /^"extra-images-idx3-ubyte": cannot tell training from test data by its name/,
    ],
    [
      'two training image files',
      () => [...train(), { name: 'more/train-images-idx3-ubyte.gz', data: gzipSync(images(digits)) }],
      'two idx files hold the same data: "train-images-idx3-ubyte" and "more/train-images-idx3-ubyte.gz"',
    ],
    [
      'a .gz file that does not gunzip',
      () => [{ name: 'train-images-idx3-ubyte.gz', data: Buffer.from([0x1f, 0x8b, 1, 2, 3]) }, train()[1]!],
      /^"train-images-idx3-ubyte.gz" starts like a gzip file but does not decompress/,
    ],
  ])('when it has %s, then it is a 400 saying so', async (_, entries, message) => {
    const error = await refusal(ingestBytes(store, zipArchive(entries())), 400, 'invalid_dataset');
    if (typeof message === 'string') expect(error.message).toBe(message);
    else expect(error.message).toMatch(message);
    await expectNothingStored(store);
  });

  it('when its idx files hold more images than DATASET_MAX_FILES, then it is a 413', async () => {
    const limits = { maxBytes: 2 ** 24, maxUncompressedBytes: 2 ** 24, maxFiles: 20, maxClasses: 10 };
    const error = await refusal(
      ingestBytes(store, zipArchive(train()), {}, limits),
      413,
      'dataset_too_large',
    );
    expect(error.message).toBe('the idx files hold 21 images, more than the limit of 20 (DATASET_MAX_FILES)');
  });
});
