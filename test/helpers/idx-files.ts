import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC } from '../../src/ml/data/idx.js';

/** Builders for small IDX files, to test the reader and the data set loader on broken input. */
export function idxHeader(magic: number, dims: number[]): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((size, i) => header.writeUInt32BE(size, 4 + 4 * i));
  return header;
}

/** By default image i is filled with the byte i, so a split's origin can be read off its pixels. */
export function imageFile(
  count: number,
  rows = 28,
  cols = 28,
  pixel: (image: number, offset: number) => number = (image) => image,
): Buffer {
  const size = rows * cols;
  const pixels = Buffer.alloc(count * size);
  for (let i = 0; i < pixels.length; i++) pixels[i] = pixel(Math.floor(i / size), i) % 256;
  return Buffer.concat([idxHeader(IDX_IMAGES_MAGIC, [count, rows, cols]), pixels]);
}

export function labelFile(labels: number[]): Buffer {
  return Buffer.concat([idxHeader(IDX_LABELS_MAGIC, [labels.length]), Buffer.from(labels)]);
}

export function countLabels(labels: Uint8Array): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const label of labels) counts[label] = (counts[label] ?? 0) + 1;
  return counts;
}

/** Byte equality without vitest's element-by-element diff, which is slow on megabytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

/** Images and their labels, as a data set's split holds them (28x28 bytes each). */
export interface LabelledImages {
  images: Uint8Array;
  labels: Uint8Array;
}

/**
 * Writes a data set directory as the dataset store lays one out: the four raw IDX files and, when
 * `classes` is given, classes.txt (one name a line). Creates `dir`.
 */
export async function writeIdxDataset(
  dir: string,
  { train, test, classes }: { train: LabelledImages; test: LabelledImages; classes?: readonly string[] },
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const images = (set: LabelledImages) =>
    Buffer.concat([idxHeader(IDX_IMAGES_MAGIC, [set.labels.length, 28, 28]), set.images]);
  await writeFile(join(dir, 'train-images-idx3-ubyte'), images(train));
  await writeFile(join(dir, 'train-labels-idx1-ubyte'), labelFile([...train.labels]));
  await writeFile(join(dir, 't10k-images-idx3-ubyte'), images(test));
  await writeFile(join(dir, 't10k-labels-idx1-ubyte'), labelFile([...test.labels]));
  if (classes) await writeFile(join(dir, 'classes.txt'), `${classes.join('\n')}\n`);
  return dir;
}

/**
 * The first `limit` images of `set` whose label is in `wanted`, relabelled by their place in it
 * (wanted [3, 7]: 3 becomes 0, 7 becomes 1): real digits as a smaller data set of other classes.
 */
export function pickLabels(set: LabelledImages, wanted: readonly number[], limit: number): LabelledImages {
  const size = 28 * 28;
  const picked: number[] = [];
  for (let i = 0; i < set.labels.length && picked.length < limit; i++) {
    if (wanted.includes(set.labels[i]!)) picked.push(i);
  }
  const images = new Uint8Array(picked.length * size);
  picked.forEach((from, to) => images.set(set.images.subarray(from * size, (from + 1) * size), to * size));
  return { images, labels: Uint8Array.from(picked, (i) => wanted.indexOf(set.labels[i]!)) };
}
