import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { isUploadedDatasetId } from '../ml/data/dataset.js';
import { isErrno, syncDirectory } from '../fs-durable.js';
import {
  entryNames,
  moveToTrash,
  promoteStaged,
  removeLeftovers,
  STAGING,
} from '../registry/store-cleanup.js';
import { newDatasetId } from './dataset-id.js';
import { DATASET_FILES, writeRecord } from './dataset-files.js';
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

/**
 * Uploaded datasets, on a disk every API and worker shares, as the model store keeps versions:
 *
 *   <root>/<id>/            a dataset, visible once renamed here whole (see dataset-files.ts)
 *   <root>/.staging/<uuid>/ an upload being received and stored
 *   <root>/.trash/<...>/    a dataset being deleted
 *
 * Datasets are immutable: an upload gets a new id, and a deletion removes one whole.
 */
export class FileDatasetStore implements DatasetStore {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  get location(): string {
    return this.root;
  }

  /** Throws a RangeError unless `id` is an uploaded dataset's id: no path is built from anything else. */
  dir(id: string): string {
    if (!isUploadedDatasetId(id)) {
      throw new RangeError(`not a dataset id: ${JSON.stringify(String(id).slice(0, 100))}`);
    }
    return path.join(this.root, id);
  }

  /**
   * Receives an upload, checks it, and stores it as a new dataset, visible in one rename once
   * every file is written and fsynced. Any failure (a DomainError for the client, an abort when
   * the client is gone) removes everything written; nothing is ever visible in part.
   */
  async ingest(
    body: NodeJS.ReadableStream | Readable,
    upload: DatasetUpload,
    limits: DatasetLimits,
    signal?: AbortSignal,
    inLine: ProcessingLine = (work) => work(),
  ): Promise<DatasetRecord> {
    checkUploadFields(upload, limits);
    const staging = path.join(this.root, STAGING, randomUUID());
    try {
      const base = await prepareDataset(staging, body, upload, limits, signal, inLine);
      for (;;) {
        const record = { id: newDatasetId(upload.name), ...base, createdAt: new Date().toISOString() };
        await writeRecord(staging, datasetRecordSchema.parse(record));
        // False when the id is taken (by chance, 1 in 36^8): draw another.
        if (await promoteStaged(this.root, staging, this.dir(record.id))) return record;
        await rm(path.join(staging, DATASET_FILES.record));
      }
    } catch (error) {
      // Best effort: a leftover is what cleanStaging() is for; the original error is what matters.
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
      throw error;
    }
  }

  /** Visible datasets, oldest first. Directories without a valid record are left out. */
  async list(): Promise<DatasetRecord[]> {
    const ids = (await entryNames(this.root)).filter((name) => isUploadedDatasetId(name));
    return readRecords(ids, (id) => this.get(id));
  }

  /** Null when no such dataset is visible (or `id` is no dataset id); a DatasetRecordError when its record is broken. */
  async get(id: string): Promise<DatasetRecord | null> {
    if (!isUploadedDatasetId(id)) return null;
    const file = path.join(this.dir(id), DATASET_FILES.record);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return null;
      throw err;
    }
    return parseRecord(text, id, file);
  }

  /** The grid of examples of a visible dataset; null when there is none. */
  async samplesPng(id: string): Promise<Buffer | null> {
    if (!(await this.get(id))) return null;
    try {
      return await readFile(path.join(this.dir(id), DATASET_FILES.samples));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return null;
      throw err;
    }
  }

  /**
   * Deletes a dataset; false when there was none. It leaves view first (renamed into the trash),
   * then `beforeDelete` runs; if that throws, the dataset is renamed back and the error rethrown.
   */
  async remove(id: string, options: RemoveOptions = {}): Promise<boolean> {
    if (!isUploadedDatasetId(id)) return false;
    const dir = this.dir(id);
    const trashed = await moveToTrash(this.root, dir, id);
    if (!trashed) return false;
    try {
      await options.beforeDelete?.();
    } catch (error) {
      await rename(trashed, dir);
      await syncDirectory(this.root);
      throw error;
    }
    await rm(trashed, { recursive: true, force: true });
    return true;
  }

  /** The store's own directory, unchecked: the loader says clearly when `<id>/` is not in it. */
  async trainingRoot(): Promise<string> {
    return this.root;
  }

  /**
   * Deletes what crashed uploads (staging dirs) and deletions (trash dirs) left, if untouched for
   * `olderThanMs` (store-cleanup.ts's LEFTOVER_AFTER_MS at start-up). Returns the deleted paths.
   */
  async cleanStaging(olderThanMs: number): Promise<string[]> {
    return removeLeftovers(this.root, olderThanMs);
  }
}
