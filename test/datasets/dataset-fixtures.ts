import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'vitest';
import { DATASET_FILES } from '../../src/datasets/dataset-files.js';
import type { DatasetLimits } from '../../src/datasets/dataset-limits.js';
import type { DatasetRecord } from '../../src/datasets/dataset-record.js';
import type { DatasetStore, ProcessingLine } from '../../src/datasets/dataset-store.js';
import type { FileDatasetStore } from '../../src/datasets/file-dataset-store.js';
import type { DatasetUpload } from '../../src/datasets/dataset-upload.js';
import { DomainError } from '../../src/errors.js';
import { loadDataset } from '../../src/ml/data/dataset.js';
import { readIdxImages, readIdxLabels } from '../../src/ml/data/idx.js';
import { mnistImageToPng } from '../../src/ml/image-preprocess.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';
import { zipArchive } from '../helpers/zip-archive.js';

/** Small enough for tests to pass and fail them on purpose. */
export const TEST_LIMITS: DatasetLimits = {
  maxBytes: 32 * 1024 * 1024,
  maxUncompressedBytes: 64 * 1024 * 1024,
  maxFiles: 5000,
  maxClasses: 20,
};

/** Test digits of one label from MNIST's t10k file, `count` of them from the `skip`-th on. */
export async function mnistDigits(label: number, count: number, skip = 0): Promise<Uint8Array[]> {
  const { test } = await loadDataset('mnist', { validationSize: 0 });
  const found: Uint8Array[] = [];
  let seen = 0;
  for (let i = 0; i < test.count && found.length < count; i++) {
    if (test.labels[i] !== label || seen++ < skip) continue;
    found.push(test.images.slice(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS));
  }
  return found;
}

/** The same digits as 28x28 grayscale PNGs, the content of a folder-per-class upload. */
export async function mnistPngs(label: number, count: number, skip = 0): Promise<Buffer[]> {
  return Promise.all((await mnistDigits(label, count, skip)).map((digit) => mnistImageToPng(digit)));
}

/** A folder-per-class zip: `count` MNIST digits of each label, in folders named as given. */
export async function foldersZip(names: Record<string, number>, count = 14): Promise<Buffer> {
  const entries = [];
  for (const [folder, digit] of Object.entries(names)) {
    const pngs = await mnistPngs(digit, count);
    entries.push(...pngs.map((data, i) => ({ name: `${folder}/${i}.png`, data, method: 'store' as const })));
  }
  return zipArchive(entries);
}

/** Uploads `body` as a client would send it: a stream, in chunks. */
export function ingestBytes(
  store: DatasetStore,
  body: Uint8Array | string,
  upload: Partial<DatasetUpload> = {},
  limits: DatasetLimits = TEST_LIMITS,
  signal?: AbortSignal,
  inLine?: ProcessingLine,
): Promise<DatasetRecord> {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);
  const chunks = Array.from({ length: Math.ceil(bytes.length / 65536) }, (_, i) =>
    bytes.subarray(i * 65536, (i + 1) * 65536),
  );
  return store.ingest(
    Readable.from(chunks),
    { name: 'test set', contentType: 'application/zip', ...upload },
    limits,
    signal,
    inLine,
  );
}

/** The DomainError a promise rejects with, checked for its status and code. */
export async function refusal(promise: Promise<unknown>, status: number, code: string): Promise<DomainError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'expected the upload to be refused').toBeInstanceOf(DomainError);
  const domain = error as DomainError;
  expect({ status: domain.status, code: domain.code, message: domain.message }).toMatchObject({
    status,
    code,
  });
  return domain;
}

/** Nothing visible, nothing left in staging: what a failed upload must leave. */
export async function expectNothingStored(store: FileDatasetStore): Promise<void> {
  expect(await store.list()).toEqual([]);
  const visible = (await readdir(store.root).catch(() => [])).filter((name) => !name.startsWith('.'));
  expect(visible).toEqual([]);
  expect(await readdir(path.join(store.root, '.staging')).catch(() => [])).toEqual([]);
}

/** A stored dataset's files, read with the idx reader training uses. */
export async function storedFiles(store: FileDatasetStore, id: string) {
  const dir = store.dir(id);
  return {
    trainImages: await readIdxImages(path.join(dir, DATASET_FILES.trainImages)),
    trainLabels: await readIdxLabels(path.join(dir, DATASET_FILES.trainLabels)),
    testImages: await readIdxImages(path.join(dir, DATASET_FILES.testImages)),
    testLabels: await readIdxLabels(path.join(dir, DATASET_FILES.testLabels)),
    classes: await readFile(path.join(dir, DATASET_FILES.classes), 'utf8'),
  };
}
