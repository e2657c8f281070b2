import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DATASET_FILES } from '../../src/datasets/dataset-files.js';
import type { DatasetUpload } from '../../src/datasets/dataset-upload.js';
import { FileDatasetStore } from '../../src/datasets/file-dataset-store.js';
import { readIdxImages, readIdxLabels } from '../../src/ml/data/idx.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import { sameBytes } from '../helpers/idx-files.js';
import { useTempDir } from '../helpers/temp-dir.js';
import { expectNothingStored, ingestBytes, mnistDigits, refusal, TEST_LIMITS } from './dataset-fixtures.js';

const root = useTempDir('dataset-csv');
let store: FileDatasetStore;
let run = 0;
/** Seven real digits each of 2, 4 and 9, and their labels. */
let digits: Uint8Array[];
let labels: number[];

const HEADER = ['label', ...Array.from({ length: IMAGE_PIXELS }, (_, i) => `pixel${i}`)].join(',');

beforeAll(async () => {
  digits = [...(await mnistDigits(2, 7)), ...(await mnistDigits(4, 7)), ...(await mnistDigits(9, 7))];
  labels = [...Array(7).fill(2), ...Array(7).fill(4), ...Array(7).fill(9)];
});

beforeEach(() => {
  store = new FileDatasetStore(path.join(root, `store-${++run}`));
});

/** Kaggle's train.csv layout: a header, then `label,p0,...,p783` per digit. */
function csv(rows: string[], eol = '\n'): string {
  return [HEADER, ...rows].join(eol) + eol;
}

function rows(labelOf: (i: number) => number | string = (i) => labels[i]!): string[] {
  return digits.map((d, i) => [labelOf(i), ...d].join(','));
}

const ingestCsv = (text: string, upload: Partial<DatasetUpload> = {}, limits = TEST_LIMITS) =>
  ingestBytes(store, text, { contentType: 'text/csv', ...upload }, limits);

describe('a CSV upload', () => {
  it('when it is in the Kaggle layout with CRLF lines and no ?classes=, then the labels present become the classes', async () => {
    const record = await ingestCsv(csv(rows(), '\r\n'));
    expect(record).toMatchObject({
      format: 'csv',
      classes: ['2', '4', '9'],
      counts: {
        train: 18,
        test: 3,
        perClass: [
          { class: '2', train: 6, test: 1 },
          { class: '4', train: 6, test: 1 },
          { class: '9', train: 6, test: 1 },
        ],
      },
      skipped: [],
      skippedCount: 0,
    });
    const dir = store.dir(record.id);
    const train = await readIdxImages(path.join(dir, DATASET_FILES.trainImages));
    const trainLabels = await readIdxLabels(path.join(dir, DATASET_FILES.trainLabels));
    // The pixels are taken as they are, as /predict takes 28x28 numbers; labels remapped to 0..2.
    for (let i = 0; i < train.count; i++) {
      const from = digits.findIndex((d) =>
        sameBytes(d, train.pixels.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS)),
      );
      expect(from).toBeGreaterThanOrEqual(0);
      expect(trainLabels.labels[i]).toBe({ 2: 0, 4: 1, 9: 2 }[labels[from]!]);
    }
    expect(await readFile(path.join(dir, DATASET_FILES.classes), 'utf8')).toBe('2\n4\n9\n');
  });

  it('when ?classes= names the labels, then label i is name i', async () => {
    const record = await ingestCsv(csv(rows((i) => Math.floor(i / 7))), { classes: ['two', 'four', 'nine'] });
    expect(record.classes).toEqual(['two', 'four', 'nine']);
    expect(record.counts.perClass.map((c) => c.train + c.test)).toEqual([7, 7, 7]);
  });

  it('when the same CSV comes twice, then the split is the same', async () => {
    const [a, b] = [await ingestCsv(csv(rows())), await ingestCsv(csv(rows()))];
    const read = (id: string, file: string) => readFile(path.join(store.dir(id), file));
    for (const file of [DATASET_FILES.trainImages, DATASET_FILES.testImages, DATASET_FILES.trainLabels]) {
      expect((await read(a.id, file)).equals(await read(b.id, file)), file).toBe(true);
    }
  });
});

describe('a CSV that is no dataset', () => {
  const badRow = (line: number, row: string) => {
    const all = rows();
    all[line - 2] = row;
    return csv(all);
  };
  const digitRow = (label: string | number, pixels: (string | number)[] = Array(784).fill(0)) =>
    [label, ...pixels].join(',');

  it.each([
    [
      'a row with too few values',
      () => badRow(5, digitRow(2, Array(700).fill(0))),
      'line 5: 701 values; expected 785: a label and 784 pixels (28x28)',
    ],
    [
      'a row with too many values',
      () => badRow(6, digitRow(2, Array(790).fill(0))),
      'line 6: 791 values; expected 785: a label and 784 pixels (28x28)',
    ],
    [
      'a pixel above 255',
      () => badRow(3, digitRow(2, [...Array(100).fill(0), 256, ...Array(683).fill(0)])),
      'line 3, column 102 (pixel100): "256" is not an integer from 0 to 255',
    ],
    [
      'a negative pixel',
      () => badRow(3, digitRow(2, [-1, ...Array(783).fill(0)])),
      'line 3, column 2 (pixel0): "-1" is not an integer from 0 to 255',
    ],
    [
      'a fractional pixel',
      () => badRow(4, digitRow(2, [0.5, ...Array(783).fill(0)])),
      'line 4, column 2 (pixel0): "0.5" is not an integer from 0 to 255',
    ],
    [
      'an empty pixel',
      () => badRow(4, digitRow(2, ['', ...Array(783).fill(0)])),
      'line 4, column 2 (pixel0): "" is not an integer from 0 to 255',
    ],
    [
      'a label that is a word',
      () => badRow(7, digitRow('two')),
      'line 7, label: "two" is not an integer from 0 to 255',
    ],
    [
      'a label above 255',
      () => badRow(7, digitRow(300)),
      'line 7, label: "300" is not an integer from 0 to 255',
    ],
    [
      "no label column (Kaggle's test.csv)",
      () => [HEADER.replace('label,', ''), ...digits.map((d) => d.join(','))].join('\n'),
      /^no label column: the header starts with "pixel0" and has 784 columns \(Kaggle's test.csv has no labels\)/,
    ],
    ['no header', () => rows().join('\n'), /^no header: line 1 must be the header label,pixel0/],
    [
      'a header of the wrong width',
      () => [HEADER.split(',').slice(0, 700).join(','), ...rows()].join('\n'),
      /^line 1: the header has 700 columns; expected 785/,
    ],
    ['nothing at all', () => '', /^the CSV is empty/],
    ['a header and no rows', () => `${HEADER}\n\n`, 'the CSV has a header but no rows'],
    [
      'one label only',
      () => csv(rows(() => 3)),
      'one class only: the CSV’s labels gives 1 class(es); a classifier needs at least 2 classes',
    ],
    ['a line without end', () => `${HEADER}\n${'1'.repeat(100_000)}`, /^line 2 is longer than 16,384 bytes/],
  ])('when it has %s, then it is a 400 naming the line', async (_, text, message) => {
    const error = await ingestCsv(text()).then(
      () => null,
      (e: unknown) => e as Error & { status: number; code: string },
    );
    expect(error).toMatchObject({ status: 400 });
    expect(['invalid_csv', 'invalid_dataset']).toContain(error!.code);
    if (typeof message === 'string') expect(error!.message).toBe(message);
    else expect(error!.message).toMatch(message);
    await expectNothingStored(store);
  });

  it('when a label has no name in ?classes=, then it is a 400 naming the line', async () => {
    const error = await refusal(
      ingestCsv(csv(rows((i) => Math.floor(i / 7))), { classes: ['a', 'b'] }),
      400,
      'invalid_csv',
    );
    expect(error.message).toBe('line 16: label 2 has no class: ?classes= names 2 classes (labels 0 to 1)');
  });

  it('when a class of ?classes= has no rows, then it is a 400 about empty classes', async () => {
    const error = await refusal(
      ingestCsv(csv(rows((i) => Math.floor(i / 7))), { classes: ['a', 'b', 'c', 'd'] }),
      400,
      'invalid_dataset',
    );
    expect(error.message).toBe('empty classes: "d" have no images in the CSV');
  });

  it.each([
    [['a'], 'one class only: ?classes= gives 1 class(es); a classifier needs at least 2 classes'],
    [['a', 'b', 'a'], '?classes= name 3: class "a" is named twice (also ?classes= name 1)'],
    [['a', ''], /^\?classes= name 2: "" is not a valid class name/],
    [['a', 'x\u200by'], /^\?classes= name 2: "x\uFFFDy" is not a valid class name/],
    [
      Array.from({ length: 21 }, (_, i) => `c${i}`),
      '?classes= gives 21 classes, more than the limit of 20 (DATASET_MAX_CLASSES)',
    ],
  ])('when ?classes= is %j, then it is a 400 before the body is read', async (classes, message) => {
    const error = await refusal(ingestCsv(csv(rows()), { classes }), 400, 'invalid_dataset');
    if (typeof message === 'string') expect(error.message).toBe(message);
    else expect(error.message).toMatch(message);
  });

  it('when it has more rows than DATASET_MAX_FILES, then it is a 413', async () => {
    const error = await refusal(
      ingestCsv(csv(rows()), {}, { ...TEST_LIMITS, maxFiles: 20 }),
      413,
      'dataset_too_large',
    );
    expect(error.message).toBe(
      'the CSV has more than 20 rows, the most images a dataset may have (DATASET_MAX_FILES)',
    );
  });
});
