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
