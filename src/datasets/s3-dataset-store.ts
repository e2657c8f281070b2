import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { isErrno, writeDurably } from '../fs-durable.js';
import { isUploadedDatasetId } from '../ml/data/dataset.js';
import { moveToTrash, promoteStaged, removeLeftovers, STAGING } from '../registry/store-cleanup.js';
import type { S3Objects } from '../store/s3-objects.js';
import { settleAll } from '../store/settle-all.js';
import { DATASET_FILES, recordBytes } from './dataset-files.js';
import { newDatasetId } from './dataset-id.js';
import type { DatasetLimits } from './dataset-limits.js';
import { datasetRecordSchema, type DatasetRecord } from './dataset-record.js';
import {
  checkUploadFields,
  parseRecord,
  prepareDataset,
  readRecords,
  type DatasetStore,
  type ProcessingLine,
  type RemoveOptions,
} from './dataset-store.js';
import type { DatasetUpload } from './dataset-upload.js';

const DATASETS = 'datasets/';
/** Every file of a dataset but its record, which is written after them. */
const DATA_FILES = Object.values(DATASET_FILES).filter((name) => name !== DATASET_FILES.record);

/**
 * Uploaded datasets in S3-compatible object storage, laid out as on disk (dataset-files.ts):
 *
 *   datasets/<id>/<file>          a dataset's files
 *   datasets/<id>/dataset.json    its record, written last: the dataset is visible exactly when it exists
 *
 * Locally, under `cacheDir`: `.staging/<uuid>/` holds an upload while it is checked and stored,
 * and `datasets/<id>/` a whole copy of a dataset for training (datasets are immutable, so a copy
 * stays good), fetched through `datasets/.staging/<uuid>/` and renamed into place.
 */
export class S3DatasetStore implements DatasetStore {
  constructor(
    readonly objects: S3Objects,
    readonly cacheDir: string,
  ) {}

  get location(): string {
    return `s3://${this.objects.bucket}/${this.objects.prefix}${DATASETS}`;
  }

  /**
   * Receives an upload into a local staging dir (the body never sits in memory), checks it, uploads
   * its files, then its record. Any failure removes what was uploaded; the staging dir always goes.
   */
  async ingest(
    body: NodeJS.ReadableStream | Readable,
    upload: DatasetUpload,
    limits: DatasetLimits,
    signal?: AbortSignal,
    inLine: ProcessingLine = (work) => work(),
  ): Promise<DatasetRecord> {
    checkUploadFields(upload, limits);
    const staging = path.join(this.cacheDir, STAGING, randomUUID());
    let id: string | undefined;
    try {
      const fields = await prepareDataset(staging, body, upload, limits, signal, inLine);
      id = await this.unusedId(upload.name);
      const objectsDir = this.dir(id);
      await settleAll(
        DATA_FILES.map(async (name) => {
          signal?.throwIfAborted();
          await this.objects.upload(objectsDir + name, path.join(staging, name));
        }),
      );
      signal?.throwIfAborted();
      const record = datasetRecordSchema.parse({ id, ...fields, createdAt: new Date().toISOString() });
      await this.objects.put(objectsDir + DATASET_FILES.record, recordBytes(record));
      return record;
    } catch (error) {
      // Best effort: whatever stays behind has no record, so it is invisible and cleanStaging()'s.
      if (id !== undefined) await this.removeObjects(id).catch(() => undefined);
      throw error;
    } finally {
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** Visible datasets, oldest first. Those without a valid record are left out. */
  async list(): Promise<DatasetRecord[]> {
    const ids = (await this.objects.children(DATASETS))
      .filter((name) => name.endsWith('/'))
      .map((name) => name.slice(0, -1))
      .filter((id) => isUploadedDatasetId(id));
    return readRecords(ids, (id) => this.get(id));
  }

  /** Null when no such dataset is visible (or `id` is no dataset id); a DatasetRecordError when its record is broken. */
  async get(id: string): Promise<DatasetRecord | null> {
    if (!isUploadedDatasetId(id)) return null;
    const bytes = await this.objects.get(this.recordName(id));
    return bytes && parseRecord(bytes.toString('utf8'), id, `${this.location}${id}/${DATASET_FILES.record}`);
  }

  /** The grid of examples of a visible dataset; null when there is none. */
  async samplesPng(id: string): Promise<Buffer | null> {
    if (!(await this.get(id))) return null;
    return this.objects.get(this.dir(id) + DATASET_FILES.samples);
  }

  /**
   * Deletes a dataset; false when there was none. Its record goes first (out of view), then
   * `beforeDelete` runs; if that throws, the same record is put back and the error rethrown.
   */
  async remove(id: string, options: RemoveOptions = {}): Promise<boolean> {
    if (!isUploadedDatasetId(id)) return false;
    const recordName = this.recordName(id);
    const record = await this.objects.get(recordName);
    if (!record) return false;
    await this.objects.remove([recordName]);
    try {
      await options.beforeDelete?.();
    } catch (error) {
      await this.objects.put(recordName, record);
      throw error;
    }
    await this.objects.removeAll(this.dir(id));
    return true;
  }

  /**
   * `<cacheDir>/datasets`, once `<id>/` in it is a whole copy of the dataset: kept from an earlier
   * job when its record is the store's, else fetched now. Null when the dataset is not visible.
   * The store's record is read each time (one small request): a deleted dataset is not trained on
   * from an old copy, and an id drawn again after a deletion never finds the other dataset's files.
   */
  async trainingRoot(id: string): Promise<string | null> {
    if (!isUploadedDatasetId(id)) return null;
    const record = await this.objects.get(this.recordName(id));
    if (!record) return null;
    const root = path.join(this.cacheDir, 'datasets');
    const dir = path.join(root, id);
    const cached = await readFile(path.join(dir, DATASET_FILES.record)).catch((err: unknown) => {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return null;
      throw err;
    });
    if (cached?.equals(record)) return root;
    if (cached) {
      const trashed = await moveToTrash(root, dir, id);
      if (trashed) await rm(trashed, { recursive: true, force: true });
    }
    await this.fetch(id, record, root);
    return root;
  }

  /**
   * Deletes, if untouched for `olderThanMs`: local staging dirs of crashed uploads and fetches, and
   * dataset prefixes in the store without a record (a crashed upload or deletion) whose objects
   * are all that old. Returns what it deleted: local paths and s3:// prefixes.
   */
  async cleanStaging(olderThanMs: number): Promise<string[]> {
    const removed = [
      ...(await removeLeftovers(this.cacheDir, olderThanMs)),
      ...(await removeLeftovers(path.join(this.cacheDir, 'datasets'), olderThanMs)),
    ];
    const cutoff = Date.now() - olderThanMs;
    const byId = new Map<string, { names: string[]; recorded: boolean; fresh: boolean }>();
    for (const object of await this.objects.list(DATASETS)) {
      const [id, ...rest] = object.name.slice(DATASETS.length).split('/');
      if (!id || !isUploadedDatasetId(id) || rest.length === 0) continue;
      const entry = byId.get(id) ?? { names: [], recorded: false, fresh: false };
      entry.names.push(object.name);
      entry.recorded ||= rest.join('/') === DATASET_FILES.record;
      entry.fresh ||= object.lastModified.getTime() >= cutoff;
      byId.set(id, entry);
    }
    for (const [id, { names, recorded, fresh }] of byId) {
      if (recorded || fresh) continue;
      await this.objects.remove(names);
      removed.push(`${this.location}${id}/`);
    }
    return removed;
  }

  /** Downloads every file of dataset `id` into a staging dir, the record last, and renames it to `<root>/<id>`. */
  private async fetch(id: string, record: Buffer, root: string): Promise<void> {
    const staging = path.join(root, STAGING, randomUUID());
    try {
      await settleAll(
        DATA_FILES.map(async (name) => {
          if (!(await this.objects.download(this.dir(id) + name, path.join(staging, name))))
            throw new Error(`dataset ${id}: ${this.location}${id}/${name} is missing`);
        }),
      );
      await writeDurably(path.join(staging, DATASET_FILES.record), record);
      // False when another process (a worker beside this one) renamed its own whole copy there
      // first: it is as good as ours, which goes.
      await promoteStaged(root, staging, path.join(root, id));
    } finally {
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** The record first, so nothing is visible while the rest goes. */
  private async removeObjects(id: string): Promise<void> {
    await this.objects.remove([this.recordName(id)]);
    await this.objects.removeAll(this.dir(id));
  }

  /** An id no object is stored under (a clash is 1 in 36^8: draw again). */
  private async unusedId(name: string): Promise<string> {
    for (;;) {
      const id = newDatasetId(name);
      if ((await this.objects.children(this.dir(id))).length === 0) return id;
    }
  }

  /** Object names are built from dataset ids only. */
  private dir(id: string): string {
    if (!isUploadedDatasetId(id)) {
      throw new RangeError(`not a dataset id: ${JSON.stringify(String(id).slice(0, 100))}`);
    }
    return `${DATASETS}${id}/`;
  }

  private recordName(id: string): string {
    return this.dir(id) + DATASET_FILES.record;
  }
}
