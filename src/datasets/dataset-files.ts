import { rename } from 'node:fs/promises';
import path from 'node:path';
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC } from '../ml/data/idx.js';
import { IMAGE_SIDE } from '../ml/image-shape.js';
import { syncDirectory, writeDurably } from '../fs-durable.js';
import type { SplitImages } from './dataset-split.js';
import type { DatasetRecord } from './dataset-record.js';
import type { LabelledImages } from './labelled-images.js';
import { samplesGridPng } from './samples-grid.js';

/**
 * A stored dataset's files. The layout is a contract with training (src/ml/data/dataset.ts reads
 * `<DATASET_DIR>/<id>/` with the idx reader and classes.txt), so it is MNIST's own: four raw idx
 * files of 28x28 bytes, ink high, labels 0..K-1, the training file in a seeded shuffled order.
 */
export const DATASET_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
  /** K lines of UTF-8: the name of label i on line i + 1. */
  classes: 'classes.txt',
  /** A grid of training examples, one row per class (samples-grid.ts). */
  samples: 'samples.png',
  /** The record, written last: a directory with it holds a whole dataset. */
  record: 'dataset.json',
} as const;

/** Every file but the record, each fsynced. */
export async function writeDatasetFiles(
  dir: string,
  split: SplitImages,
  classes: readonly string[],
): Promise<void> {
  await writeImages(dir, DATASET_FILES.trainImages, DATASET_FILES.trainLabels, split.train);
  await writeImages(dir, DATASET_FILES.testImages, DATASET_FILES.testLabels, split.test);
  await writeDurably(path.join(dir, DATASET_FILES.classes), Buffer.from(`${classes.join('\n')}\n`, 'utf8'));
  await writeDurably(
    path.join(dir, DATASET_FILES.samples),
    await samplesGridPng(split.train, classes.length),
  );
}

/** A dataset.json's bytes, the same on every backend. */
export function recordBytes(record: DatasetRecord): Buffer {
  return Buffer.from(`${JSON.stringify(record, null, 2)}\n`, 'utf8');
}

/** Under a temporary name then renamed, so a dataset.json is always whole. */
export async function writeRecord(dir: string, record: DatasetRecord): Promise<void> {
  const file = path.join(dir, DATASET_FILES.record);
  const tmp = `${file}.tmp`;
  await writeDurably(tmp, recordBytes(record));
  await rename(tmp, file);
  await syncDirectory(dir);
}

async function writeImages(
  dir: string,
  imagesName: string,
  labelsName: string,
  set: LabelledImages,
): Promise<void> {
  await writeDurably(path.join(dir, imagesName), [
    idxHeader(IDX_IMAGES_MAGIC, [set.count, IMAGE_SIDE, IMAGE_SIDE]),
    set.pixels,
  ]);
  await writeDurably(path.join(dir, labelsName), [idxHeader(IDX_LABELS_MAGIC, [set.count]), set.labels]);
}

/** Big-endian magic, then one 32-bit size per dimension. */
function idxHeader(magic: number, dims: number[]): Uint8Array {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((size, i) => header.writeUInt32BE(size, 4 + 4 * i));
  return header;
}
