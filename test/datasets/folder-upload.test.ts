import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FileDatasetStore } from '../../src/datasets/file-dataset-store.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import { sameBytes } from '../helpers/idx-files.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { zipArchive, type ZipEntrySpec } from '../helpers/zip-archive.js';
import { expectNothingStored, ingestBytes, storedFiles, mnistPngs, refusal } from './dataset-fixtures.js';

const root = useTempDir('dataset-folders');
let store: FileDatasetStore;
let run = 0;
/** 14 PNGs each of the digits 0, 1 and 7. */
const pngs: Record<number, Buffer[]> = {};

beforeAll(async () => {
  for (const digit of [0, 1, 7]) pngs[digit] = await mnistPngs(digit, 14);
});

beforeEach(() => {
  store = new FileDatasetStore(path.join(root, `store-${++run}`));
});

/** `<prefix><class>/<i>.png` for the given classes, with the digits' PNGs as content. */
function classFolders(classes: Record<string, number>, prefix = '', count = 14): ZipEntrySpec[] {
  return Object.entries(classes).flatMap(([name, digit]) =>
    pngs[digit]!.slice(0, count).map((data, i) => ({ name: `${prefix}${name}/${i}.png`, data })),
  );
}

describe('a zip of class folders', () => {
  it('when it has no train/ and test/, then 1/7 of each class is held out and the rest is stored as MNIST idx files', async () => {
    const record = await ingestBytes(store, zipArchive(classFolders({ zero: 0, one: 1, seven: 7 })), {
      name: 'Three digits',
    });
    expect(record).toMatchObject({
      name: 'Three digits',
      builtIn: false,
      format: 'folders',
      classes: ['one', 'seven', 'zero'],
      counts: {
        train: 36,
        test: 6,
        perClass: [
          { class: 'one', train: 12, test: 2 },
          { class: 'seven', train: 12, test: 2 },
          { class: 'zero', train: 12, test: 2 },
        ],
      },
      skipped: [],
      skippedCount: 0,
    });
    expect(record.id).toMatch(/^three-digits-[a-z0-9]{8}$/);
    expect(await store.get(record.id)).toEqual(record);
    expect(await store.list()).toEqual([record]);

    const files = await storedFiles(store, record.id);
    expect(files.trainImages).toMatchObject({ count: 36, rows: 28, cols: 28 });
    expect(files.testImages).toMatchObject({ count: 6, rows: 28, cols: 28 });
    expect(files.trainLabels.count).toBe(36);
    expect(files.classes).toBe('one\nseven\nzero\n');
    // Ink high on a black background, as MNIST: the border is black, the centre bright.
    const first = files.trainImages.pixels.subarray(0, IMAGE_PIXELS);
    expect(Math.max(...first.subarray(0, 28))).toBe(0);
    expect(Math.max(...first)).toBe(255);
    // Shuffled: the training file does not hold the classes one after the other.
    const labels = Array.from(files.trainLabels.labels);
    expect(labels).not.toEqual([...labels].sort());
    expect(labels.filter((l) => l === 0)).toHaveLength(12);
  });

  it('when the same files come twice, in another entry order, then the split and the order are the same', async () => {
    const entries = classFolders({ zero: 0, one: 1, seven: 7 });
    const a = await ingestBytes(store, zipArchive(entries));
    const b = await ingestBytes(store, zipArchive([...entries].reverse()));
    expect(b.id).not.toBe(a.id);
    const [filesA, filesB] = [await storedFiles(store, a.id), await storedFiles(store, b.id)];
    expect(sameBytes(filesA.trainImages.pixels, filesB.trainImages.pixels)).toBe(true);
    expect(sameBytes(filesA.testImages.pixels, filesB.testImages.pixels)).toBe(true);
    expect(Array.from(filesA.trainLabels.labels)).toEqual(Array.from(filesB.trainLabels.labels));
  });

  it('when it has train/ and test/ inside one wrapping folder, then they are the split and the wrapper is dropped', async () => {
    const entries = [
      ...classFolders({ a: 0, b: 1 }, 'my digits/train/', 10),
      ...classFolders({ a: 0, b: 1 }, 'my digits/test/', 3),
      { name: 'my digits/', data: '' },
    ];
    const record = await ingestBytes(store, zipArchive(entries));
    expect(record.classes).toEqual(['a', 'b']);
    expect(record.counts).toEqual({
      train: 20,
      test: 6,
      perClass: [
        { class: 'a', train: 10, test: 3 },
        { class: 'b', train: 10, test: 3 },
      ],
    });
    const files = await storedFiles(store, record.id);
    expect(Array.from(files.testLabels.labels)).toEqual([0, 0, 0, 1, 1, 1]);
  });

  it('when a wrapping folder holds class folders, then the classes are its folders', async () => {
    const record = await ingestBytes(store, zipArchive(classFolders({ zero: 0, one: 1 }, 'digits/')));
    expect(record.classes).toEqual(['one', 'zero']);
    expect(record.counts.train + record.counts.test).toBe(28);
  });

  it('when class names mix cases, digits and accents, then they are in codepoint order, as ImageFolder sorts them', async () => {
    const names = ['é', 'b', 'B', 'a', '10', '9'];
    const entries = names.flatMap((name, i) =>
      pngs[[0, 1, 7][i % 3]!]!.slice(0, 2).map((data, j) => ({ name: `${name}/${j}.png`, data })),
    );
    const record = await ingestBytes(store, zipArchive(entries));
    expect(record.classes).toEqual(['10', '9', 'B', 'a', 'b', 'é']);
  });

  it('when images sit at any depth, with macOS and Windows extras and other files, then extras are ignored and other files listed', async () => {
    const entries: ZipEntrySpec[] = [
      ...classFolders({ zero: 0, one: 1 }).map((e, i) => ({
        ...e,
        name: e.name.replace('/', `/deep/${i % 2}/`),
      })),
      { name: '__MACOSX/zero/._0.png', data: 'resource fork' },
      { name: 'zero/.DS_Store', data: 'finder' },
      { name: 'one/Thumbs.db', data: 'thumbnails' },
      { name: 'README.txt', data: 'hello' },
      { name: 'zero/notes.gif', data: 'GIF89a' },
      { name: 'stray.png', data: pngs[7]![0]! },
    ];
    const record = await ingestBytes(store, zipArchive(entries));
    expect(record.classes).toEqual(['one', 'zero']);
    expect(record.counts.train + record.counts.test).toBe(28);
    expect(record.skipped).toEqual([
      { file: 'README.txt', reason: 'not a PNG or JPEG file' },
      { file: 'stray.png', reason: 'not inside a class folder (<class>/)' },
      { file: 'zero/notes.gif', reason: 'not a PNG or JPEG file' },
    ]);
    expect(record.skippedCount).toBe(3);
  });

  it('when a few images are corrupt or blank, then they are skipped and listed with the reason', async () => {
    const blank = await sharp(Buffer.alloc(IMAGE_PIXELS), { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toBuffer();
    const entries = [
      ...classFolders({ zero: 0, one: 1 }),
      { name: 'zero/broken.png', data: pngs[0]![0]!.subarray(0, 40) },
      { name: 'one/blank.png', data: blank },
    ];
    const record = await ingestBytes(store, zipArchive(entries));
    expect(record.counts.train + record.counts.test).toBe(28);
    expect(record.skippedCount).toBe(2);
    expect(record.skipped.map((s) => s.file)).toEqual(['one/blank.png', 'zero/broken.png']);
    expect(record.skipped[0]!.reason).toMatch(/no ink/);
    expect(record.skipped[1]!.reason).toMatch(/not a PNG or JPEG image/);
  });

  it('when more than 10% of the images cannot be used, then the upload is a 400 naming some of them', async () => {
    const entries = [
      ...classFolders({ zero: 0, one: 1 }, '', 12),
      ...['a', 'b', 'c'].map((n) => ({ name: `zero/${n}.png`, data: 'not a png' })),
    ];
    const error = await refusal(ingestBytes(store, zipArchive(entries)), 400, 'invalid_dataset');
    expect(error.message).toMatch(
      /^3 of 27 images could not be used, more than 10% \("zero\/a.png": not a PNG/,
    );
    await expectNothingStored(store);
  });

  it('when no image can be used, then the upload is a 400 saying so', async () => {
    const entries = ['zero', 'one'].map((c) => ({ name: `${c}/x.png`, data: 'nope' }));
    const error = await refusal(ingestBytes(store, zipArchive(entries)), 400, 'invalid_dataset');
    expect(error.message).toMatch(/^none of the 2 images could be used; the first, "one\/x.png"/);
  });

  it('when more than 100 files are skipped, then the record lists 100 and counts them all', async () => {
    const entries = [
      ...classFolders({ zero: 0, one: 1 }),
      ...Array.from({ length: 130 }, (_, i) => ({
        name: `docs/${String(i).padStart(3, '0')}.txt`,
        data: 'x',
      })),
    ];
    const record = await ingestBytes(store, zipArchive(entries));
    expect(record.skipped).toHaveLength(100);
    expect(record.skippedCount).toBe(130);
    expect(record.skipped[0]).toEqual({ file: 'docs/000.txt', reason: 'not a PNG or JPEG file' });
  });

  it('when its samples.png is read, then it is a grid of 10 examples per class, one row per class', async () => {
    const record = await ingestBytes(store, zipArchive(classFolders({ zero: 0, one: 1, seven: 7 })));
    const png = await store.samplesPng(record.id);
    const { width, height, channels } = await sharp(png!).metadata();
    expect({ width, height, channels }).toEqual({ width: 280, height: 84, channels: 1 });
    // Row 0 holds the class 'one': every cell of it has ink.
    const { data } = await sharp(png!).raw().toBuffer({ resolveWithObject: true });
    for (let cell = 0; cell < 10; cell++) {
      let ink = 0;
      for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) ink += data[y * 280 + cell * 28 + x]!;
      expect(ink, `cell ${cell}`).toBeGreaterThan(0);
    }
  });
});

describe('a zip of class folders that is no dataset', () => {
  it.each([
    ['one class only', { only: 0 }, /^one class only: the zip’s class folders gives 1 class/],
    [
      'a class folder whose name is not safe text',
      { zero: 0, 'a<b>': 1 },
      /^class folder "a<b>": "a<b>" is not a valid class name/,
    ],
  ])('when it has %s, then it is a 400 naming it', async (_, classes, message) => {
    const error = await refusal(
      ingestBytes(store, zipArchive(classFolders(classes))),
      400,
      'invalid_dataset',
    );
    expect(error.message).toMatch(message);
    await expectNothingStored(store);
  });

  it('when it has more classes than DATASET_MAX_CLASSES, then it is a 400 naming the limit', async () => {
    const entries = Array.from({ length: 21 }, (_, c) => ({ name: `c${c}/0.png`, data: pngs[0]![0]! }));
    const error = await refusal(ingestBytes(store, zipArchive(entries)), 400, 'invalid_dataset');
    expect(error.message).toBe(
      'the zip’s class folders gives 21 classes, more than the limit of 20 (DATASET_MAX_CLASSES)',
    );
  });

  it('when a class has a single image, then it is a 400: one cannot be both trained on and held out', async () => {
    const entries = [...classFolders({ zero: 0 }), { name: 'one/0.png', data: pngs[1]![0]! }];
    const error = await refusal(ingestBytes(store, zipArchive(entries)), 400, 'invalid_dataset');
    expect(error.message).toMatch(/^class "one" has 1 usable image\(s\): a class needs at least 2/);
  });

  it('when a class has images in test/ only, then it is a 400 about empty classes', async () => {
    const entries = [
      ...classFolders({ a: 0, b: 1 }, 'train/', 5),
      ...classFolders({ a: 0, b: 1, c: 7 }, 'test/', 2),
    ];
    const error = await refusal(ingestBytes(store, zipArchive(entries)), 400, 'invalid_dataset');
    expect(error.message).toBe('empty classes: "c" have images in test/ but none in train/');
  });

  it('when the images of a class all fail, then it is a 400 about empty classes', async () => {
    const entries = [
      ...classFolders({ zero: 0, one: 1, seven: 7 }, '', 14).filter((e) => !e.name.startsWith('seven/')),
      ...Array.from({ length: 14 }, (_, i) => ({ name: `two/${i}.png`, data: pngs[0]![i]! })),
      { name: 'seven/0.png', data: 'broken' },
    ];
    const error = await refusal(ingestBytes(store, zipArchive(entries)), 400, 'invalid_dataset');
    expect(error.message).toBe('empty classes: "seven" have no images that could be used');
  });

  it('when it holds no images in folders at all, then it is a 400 saying what layout is expected', async () => {
    const error = await refusal(
      ingestBytes(store, zipArchive([{ name: 'notes.txt', data: 'hello' }])),
      400,
      'invalid_dataset',
    );
    expect(error.message).toMatch(/^the zip holds no images in class folders: expected <class>\/<file>.png/);
  });
});
