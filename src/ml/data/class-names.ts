/**
 * Class names: the built-in data sets' own, the rule every name must meet, and `classes.txt`, the
 * file that names a data set's labels (line i+1 names label i).
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { isErrno } from '../../fs-durable.js';
import { DatasetError } from './dataset-error.js';

/** Labels are stored as one byte each (IDX), so a data set has at most 256 classes. */
export const MAX_CLASSES = 256;
/** Fewer cannot be told apart: a classifier needs two classes at least. */
export const MIN_CLASSES = 2;
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

export const CLASSES_FILE = 'classes.txt';
/** MAX_CLASSES names of 64 characters of up to 4 UTF-8 bytes, with line ends, and room to spare. */
const MAX_CLASSES_FILE_BYTES = 128 * 1024;

/**
 * The names in a classes.txt's text, one a line. CRLF line ends, a byte-order mark and blank lines
 * at the end are fine; a blank line elsewhere, a name that classNameSchema refuses, a repeated
 * name, or fewer than 2 or more than MAX_CLASSES names are a DatasetError naming `source`.
 */
export function parseClassNames(text: string, source: string): string[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  while (lines.length > 0 && lines.at(-1)!.trim() === '') lines.pop();
  const seen = new Map<string, number>();
  lines.forEach((name, i) => {
    const checked = classNameSchema.safeParse(name);
    if (!checked.success) {
      const why = name === '' ? 'it is empty' : checked.error.issues[0]!.message;
      throw new DatasetError(`${source} line ${i + 1}: ${quoted(name)} is not a class name: ${why}`);
    }
    const earlier = seen.get(name);
    if (earlier !== undefined) {
      throw new DatasetError(`${source} line ${i + 1}: ${quoted(name)} repeats line ${earlier + 1}`);
    }
    seen.set(name, i);
  });
  if (lines.length < MIN_CLASSES || lines.length > MAX_CLASSES) {
    throw new DatasetError(
      `${source} names ${lines.length} classes; a data set needs ${MIN_CLASSES} to ${MAX_CLASSES}, one a line`,
    );
  }
  return lines;
}

/** The names in `<dir>/classes.txt`, or null when the directory has none. */
export async function readClassNames(dir: string): Promise<string[] | null> {
  const file = join(dir, CLASSES_FILE);
  const size = await stat(file).then(
    (stats) => (stats.isFile() ? stats.size : Number.POSITIVE_INFINITY),
    (error: unknown) => {
      if (isErrno(error, 'ENOENT')) return null;
      throw error;
    },
  );
  if (size === null) return null;
  if (size > MAX_CLASSES_FILE_BYTES) {
    throw new DatasetError(`${file} is not a text file of at most ${MAX_CLASSES_FILE_BYTES} bytes`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(await readFile(file));
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    throw new DatasetError(`${file} is not UTF-8 text`, { cause: error });
  }
  return parseClassNames(text, file);
}

/** A name as the message shows it: escaped, so control characters cannot reach a log or a page. */
function quoted(name: string): string {
  const shown = name.length > 40 ? `${name.slice(0, 40)}...` : name;
  return JSON.stringify(shown);
}
