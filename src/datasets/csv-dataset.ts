import { IMAGE_PIXELS } from '../ml/image-shape.js';
import { classesFromLabelValues } from './class-names.js';
import { checkNoEmptyClasses } from './dataset-checks.js';
import { datasetTooLarge, formatCount, invalidCsv, shownName } from './dataset-errors.js';
import type { DatasetLimits } from './dataset-limits.js';
import { ImageCollector } from './labelled-images.js';
import { LineTooLongError, readLines } from './line-reader.js';
import type { ParsedDataset } from './parsed-dataset.js';

/** Label and 784 pixels. */
const COLUMNS = 1 + IMAGE_PIXELS;
/** A row is at most 785 x "255," (3,140 bytes); the header about 6,900. Beyond this, no CSV of ours. */
const MAX_LINE_BYTES = 16 * 1024;

/**
 * The Kaggle digit-recognizer layout: a header whose first column is `label`, then 784 pixel
 * columns; each row a label and 784 integers 0..255, ink high, as MNIST stores them (taken as they
 * are, as /predict takes 28x28 numbers). Streamed from the file line by line; any bad row is a 400
 * naming its line. `classes`, from ?classes=, names label i; without it the labels present are.
 */
export async function readCsvDataset(
  file: string,
  classes: string[] | undefined,
  limits: DatasetLimits,
  signal?: AbortSignal,
): Promise<ParsedDataset> {
  const images = new ImageCollector();
  const pixels = new Uint8Array(IMAGE_PIXELS);
  const values = new Int32Array(COLUMNS);
  let lineNumber = 0;
  let header = false;
  try {
    for await (const line of readLines(file, MAX_LINE_BYTES, signal)) {
      lineNumber++;
      if (!header) {
        checkHeader(line);
        header = true;
        continue;
      }
      if (line.trim() === '') continue;
      readRow(line, lineNumber, values);
      const label = values[0]!;
      if (classes && label >= classes.length) {
        throw invalidCsv(
          `line ${lineNumber}: label ${label} has no class: ?classes= names ${classes.length} classes ` +
            `(labels 0 to ${classes.length - 1})`,
        );
      }
      if (images.count >= limits.maxFiles) {
        throw datasetTooLarge(
          `the CSV has more than ${formatCount(limits.maxFiles)} rows, the most images a dataset may have (DATASET_MAX_FILES)`,
        );
      }
      for (let i = 0; i < IMAGE_PIXELS; i++) pixels[i] = values[i + 1]!;
      images.push(pixels, label);
    }
  } catch (error) {
    if (error instanceof LineTooLongError) {
      throw invalidCsv(
        `line ${error.line} is longer than ${formatCount(MAX_LINE_BYTES)} bytes: not a row of a label and 784 pixels`,
      );
    }
    throw error;
  }
  if (!header) throw invalidCsv('the CSV is empty: expected a header label,pixel0,…,pixel783 and then rows');
  if (images.count === 0) throw invalidCsv('the CSV has a header but no rows');
  const train = images.finish();
  const named = classes ?? classesFromLabelValues([train.labels], limits.maxClasses, 'the CSV’s labels');
  checkNoEmptyClasses(train, named, 'in the CSV');
  return { format: 'csv', classes: named, train, test: null, skipped: [] };
}

function checkHeader(line: string): void {
  const fields = line
    .replace(/^\uFEFF/, '')
    .split(',')
    .map((field) => field.trim().replace(/^"(.*)"$/, '$1'));
  const first = fields[0] ?? '';
  if (first.toLowerCase() !== 'label') {
    if (/^pixel/i.test(first) || fields.length === IMAGE_PIXELS) {
      throw invalidCsv(
        `no label column: the header starts with ${shownName(first)} and has ${fields.length} columns ` +
          "(Kaggle's test.csv has no labels); upload a CSV whose first column is label, such as train.csv",
      );
    }
    if (/^\d+$/.test(first)) {
      throw invalidCsv('no header: line 1 must be the header label,pixel0,…,pixel783, then the rows');
    }
    throw invalidCsv(`line 1: the header's first column is ${shownName(first)}, not label`);
  }
  if (fields.length !== COLUMNS) {
    throw invalidCsv(
      `line 1: the header has ${fields.length} columns; expected ${COLUMNS}: label and 784 pixels (28x28)`,
    );
  }
}

/** Parses `label,p0,...,p783` into `values`, by hand: about 55 million numbers for a 70,000-row file. */
function readRow(line: string, lineNumber: number, values: Int32Array): void {
  let column = 0;
  let value = 0;
  let digits = 0;
  const end = line.length;
  for (let i = 0; i <= end; i++) {
    const code = i < end ? line.charCodeAt(i) : 0x2c;
    if (code === 0x2c) {
      if (digits === 0 || value > 255 || column >= COLUMNS) {
        throw badValue(line, lineNumber, column, i);
      }
      values[column++] = value;
      value = 0;
      digits = 0;
    } else if (code >= 0x30 && code <= 0x39 && digits < 4) {
      value = value * 10 + code - 0x30;
      digits++;
    } else {
      throw badValue(line, lineNumber, column, i);
    }
  }
  if (column !== COLUMNS) {
    throw invalidCsv(
      `line ${lineNumber}: ${column} values; expected ${COLUMNS}: a label and 784 pixels (28x28)`,
    );
  }
}

function badValue(line: string, lineNumber: number, column: number, at: number) {
  if (column >= COLUMNS) {
    const count = line.split(',').length;
    return invalidCsv(
      `line ${lineNumber}: ${count} values; expected ${COLUMNS}: a label and 784 pixels (28x28)`,
    );
  }
  const start = line.lastIndexOf(',', at - 1) + 1;
  const stop = line.indexOf(',', at);
  const text = line.slice(start, stop < 0 ? undefined : stop);
  const what = column === 0 ? 'label' : `column ${column + 1} (pixel${column - 1})`;
  return invalidCsv(`line ${lineNumber}, ${what}: ${shownName(text, 20)} is not an integer from 0 to 255`);
}
