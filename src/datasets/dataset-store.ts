import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { isUploadedDatasetId } from '../ml/data/dataset.js';
import { errorMessage, isErrno, syncDirectory } from '../fs-durable.js';
import {
  entryNames,
  moveToTrash,
  promoteStaged,
  removeLeftovers,
  STAGING,
} from '../registry/store-cleanup.js';
import { checkClassNames } from './class-names.js';
import { cleanText } from './dataset-errors.js';
import { newDatasetId } from './dataset-id.js';
import { DATASET_FILES, writeDatasetFiles, writeRecord } from './dataset-files.js';
import type { DatasetLimits } from './dataset-limits.js';
import { datasetRecordSchema, MAX_SKIPPED_LISTED, type DatasetRecord } from './dataset-record.js';
import { splitForStorage } from './dataset-split.js';
import { checkUpload, type DatasetUpload } from './dataset-upload.js';
import { countPerClass } from './labelled-images.js';
import type { ParsedDataset } from './parsed-dataset.js';
import { parseUpload } from './parse-upload.js';
import { receiveUpload } from './receive-upload.js';

/** The upload as it came, inside its staging dir; removed before the dir becomes visible. */
const UPLOAD_FILE = 'upload.part';
/** Records read at once by list(), to bound open file descriptors. */
const READ_CONCURRENCY = 16;

/** A dataset's dataset.json cannot be read as a record (edited or copied in by hand). */
export class DatasetRecordError extends Error {
  override name = 'DatasetRecordError';
}

export interface RemoveOptions {
  /**
   * Runs once the dataset is out of view, before it is deleted; throwing puts it back and is
   * rethrown. The API checks here that no queued or active job trains on it, so a job cannot
   * start on it between the check and the deletion.
   */
  beforeDelete?: () => Promise<void>;
}

/**
 * Uploaded datasets, on a disk every API and worker shares, as the model store keeps versions:
 *
 *   <root>/<id>/            a dataset, visible once renamed here whole (see dataset-files.ts)
 *   <root>/.staging/<uuid>/ an upload being received and stored
 *   <root>/.trash/<...>/    a dataset being deleted
 *
 * Datasets are immutable: an upload gets a new id, and a deletion removes one whole.
 */
/**
 * Where the costly part of an upload (decoding, preprocessing, writing) waits its turn, once the
 * body is on disk: a waiting upload holds no socket and no request timeout runs against it.
 */
export type ProcessingLine = <T>(work: () => Promise<T>) => Promise<T>;

export class DatasetStore {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
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
    // The request's own fields first: a wrong one fails before a byte of the body is read.
    checkUpload(upload);
    const classes =
      upload.classes &&
      checkClassNames(upload.classes, limits.maxClasses, '?classes=', (i) => `?classes= name ${i + 1}`);
    const staging = path.join(this.root, STAGING, randomUUID());
    try {
      await mkdir(staging, { recursive: true });
      const file = path.join(staging, UPLOAD_FILE);
      await receiveUpload(body, file, {
        maxBytes: limits.maxBytes,
        declaredBytes: upload.declaredBytes,
        signal,
      });
      const { parsed, split } = await inLine(async () => {
        const parsed = await parseUpload(file, upload.contentType, classes, limits, signal);
        await rm(file);
        signal?.throwIfAborted();
        const split = splitForStorage(parsed.train, parsed.test, parsed.classes);
        await writeDatasetFiles(staging, split, parsed.classes);
        return { parsed, split };
      });
      const base = recordFields(upload.name, parsed, split);
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
    const found: DatasetRecord[] = [];
    for (let i = 0; i < ids.length; i += READ_CONCURRENCY) {
      const records = await Promise.all(ids.slice(i, i + READ_CONCURRENCY).map((id) => this.getIfValid(id)));
      for (const record of records) if (record) found.push(record);
    }
    return found.sort(
      (a, b) => (a.createdAt ?? '').localeCompare(b.createdAt ?? '') || a.id.localeCompare(b.id),
    );
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

  /**
   * Deletes what crashed uploads (staging dirs) and deletions (trash dirs) left, if untouched for
   * `olderThanMs` (store-cleanup.ts's LEFTOVER_AFTER_MS at start-up). Returns the deleted paths.
   */
  async cleanStaging(olderThanMs: number): Promise<string[]> {
    return removeLeftovers(this.root, olderThanMs);
  }

  private async getIfValid(id: string): Promise<DatasetRecord | null> {
    try {
      return await this.get(id);
    } catch (err) {
      if (err instanceof DatasetRecordError) return null;
      throw err;
    }
  }
}

function recordFields(
  name: string,
  parsed: ParsedDataset,
  split: ReturnType<typeof splitForStorage>,
): Omit<DatasetRecord, 'id' | 'createdAt'> {
  const train = countPerClass(split.train.labels, parsed.classes.length);
  const test = countPerClass(split.test.labels, parsed.classes.length);
  return {
    name,
    builtIn: false,
    format: parsed.format,
    classes: parsed.classes,
    counts: {
      train: split.train.count,
      test: split.test.count,
      perClass: parsed.classes.map((name, label) => ({
        class: name,
        train: train[label]!,
        test: test[label]!,
      })),
    },
    skipped: parsed.skipped
      .slice(0, MAX_SKIPPED_LISTED)
      .map(({ file, reason }) => ({ file: cleanText(file), reason })),
    skippedCount: parsed.skipped.length,
  };
}

function parseRecord(text: string, id: string, file: string): DatasetRecord {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new DatasetRecordError(`dataset ${id}: ${file} is not valid JSON: ${errorMessage(err)}`);
  }
  const parsed = datasetRecordSchema.safeParse(json);
  if (!parsed.success) {
    throw new DatasetRecordError(
      `dataset ${id}: ${file} is not a dataset record:\n${z.prettifyError(parsed.error)}`,
    );
  }
  if (parsed.data.id !== id) {
    throw new DatasetRecordError(`dataset ${id}: ${file} says it is ${parsed.data.id} (copied by hand?)`);
  }
  return parsed.data;
}
