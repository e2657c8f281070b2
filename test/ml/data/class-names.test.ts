import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseClassNames, readClassNames } from '../../../src/ml/data/class-names.js';
import { DatasetError } from '../../../src/ml/data/dataset-error.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const SOURCE = '/data/letters/classes.txt';

function parseError(text: string): DatasetError {
  let caught: unknown;
  try {
    parseClassNames(text, SOURCE);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(DatasetError);
  return caught as DatasetError;
}

describe('parseClassNames (classes.txt)', () => {
  it('when each line names a class, then the names come in line order', () => {
    expect(parseClassNames('a\nb\nc', SOURCE)).toEqual(['a', 'b', 'c']);
  });

  it('when lines end in CRLF, with a byte-order mark and blank lines at the end, then those are ignored', () => {
    expect(parseClassNames('\uFEFFT-shirt/top\r\nAnkle boot\r\nÉtoile\r\n\r\n\n', SOURCE)).toEqual([
      'T-shirt/top',
      'Ankle boot',
      'Étoile',
    ]);
  });

  it.each([
    ['a\n<b>\nc\n', 'line 2: "<b>" is not a class name: letters, digits, spaces'],
    ['a\n b\n', 'line 2: " b" is not a class name: no spaces at the start or end'],
    ['a\nb\u202Ec\n', 'line 2: "b\u202Ec" is not a class name: letters, digits, spaces'],
    ['a\n\nb\n', 'line 2: "" is not a class name: it is empty'],
    [`a\n${'x'.repeat(65)}\n`, `line 2: "${'x'.repeat(40)}..." is not a class name`],
    ['a\tb\nc\n', 'line 1: "a\\tb" is not a class name'],
  ])(
    'when a line is not a valid name (%j), then a DatasetError names the file, the line and why',
    (text, message) => {
      const error = parseError(text);
      expect(error.message).toContain(`${SOURCE} ${message}`);
    },
  );

  it('when a name repeats, then a DatasetError names both lines', () => {
    expect(parseError('cat\ndog\ncat\n').message).toBe(`${SOURCE} line 3: "cat" repeats line 1`);
  });

  it.each([
    ['', 0],
    ['\n\n', 0],
    ['only\n', 1],
    [Array.from({ length: 257 }, (_, i) => `c${i}`).join('\n'), 257],
  ])(
    'when the file names too few or too many classes (%#), then a DatasetError gives the count and the range',
    (text, count) => {
      expect(parseError(text).message).toBe(
        `${SOURCE} names ${count} classes; a data set needs 2 to 256, one a line`,
      );
    },
  );

  it('when the file names 256 classes, then all are taken', () => {
    const names = Array.from({ length: 256 }, (_, i) => `c${i}`);
    expect(parseClassNames(names.join('\n'), SOURCE)).toEqual(names);
  });
});

describe('readClassNames', () => {
  const dir = useTempDir('class-names');

  it('when the directory has no classes.txt, then it answers null', async () => {
    expect(await readClassNames(dir)).toBeNull();
  });

  it('when classes.txt is not UTF-8, then a DatasetError says so', async () => {
    const sub = join(dir, 'latin1');
    await mkdir(sub);
    await writeFile(join(sub, 'classes.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a, 0x62, 0x0a]));
    await expect(readClassNames(sub)).rejects.toThrow(
      new DatasetError(`${join(sub, 'classes.txt')} is not UTF-8 text`),
    );
  });

  it('when classes.txt is huge, then a DatasetError refuses it before reading it', async () => {
    const sub = join(dir, 'huge');
    await mkdir(sub);
    await writeFile(join(sub, 'classes.txt'), Buffer.alloc(200_000, 0x61));
    await expect(readClassNames(sub)).rejects.toThrow(
      /classes\.txt is not a text file of at most 131072 bytes/,
    );
  });
});
