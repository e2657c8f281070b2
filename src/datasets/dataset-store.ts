import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { errorMessage } from '../fs-durable.js';
import { checkClassNames } from './class-names.js';
import { cleanText } from './dataset-errors.js';
import { writeDatasetFiles } from './dataset-files.js';
import type { DatasetLimits } from './dataset-limits.js';
import { datasetRecordSchema, MAX_SKIPPED_LISTED, type DatasetRecord } from './dataset-record.js';
import { splitForStorage } from './dataset-split.js';
import { checkUpload, type DatasetUpload } from './dataset-upload.js';
import { countPerClass } from './labelled-images.js';
import type { ParsedDataset } from './parsed-dataset.js';
import { parseUpload } from './parse-upload.js';
import { receiveUpload } from './receive-upload.js';

/**
 * The store of uploaded datasets, shared by every API and worker. Two backends keep the same
 * promises (test/datasets/dataset-store-contract.test.ts checks both): a directory
 * (file-dataset-store.ts) and S3-compatible object storage (s3-dataset-store.ts).
 *
 * - A dataset is visible whole or not at all, and never changes: an upload gets a new id.
 * - A refused or abandoned upload leaves nothing visible.
 * - A deletion hides the dataset before anything else, so a job created meanwhile sees it gone.
 */
export interface DatasetStore {
  /** Where the store is, for logs and messages: a directory or s3://bucket/prefix. */
  readonly location: string;
  /**
   * Receives an upload, checks it, and stores it as a new dataset, visible in one step once every
   * file is written. Any failure (a DomainError for the client, an abort when the client is gone)
   * removes everything written.
   */
  ingest(
    body: NodeJS.ReadableStream | Readable,
    upload: DatasetUpload,
    limits: DatasetLimits,
    signal?: AbortSignal,
    inLine?: ProcessingLine,
  ): Promise<DatasetRecord>;
  /** Visible datasets, oldest first. Those without a valid record are left out. */
  list(): Promise<DatasetRecord[]>;
  /** Null when no such dataset is visible (or `id` is no dataset id); a DatasetRecordError when its record is broken. */
  get(id: string): Promise<DatasetRecord | null>;
  /** The grid of examples of a visible dataset; null when there is none. */
  samplesPng(id: string): Promise<Buffer | null>;
  /**
   * Deletes a dataset; false when there was none. It leaves view first, then `beforeDelete` runs;
   * if that throws, the dataset is put back and the error rethrown.
   */
  remove(id: string, options?: RemoveOptions): Promise<boolean>;
  /**
   * A local directory under which `<id>/` holds the dataset's files (dataset-files.ts), for
   * training to read; fetched first where the store is remote. Null when no such dataset is visible.
   */
  trainingRoot(id: string): Promise<string | null>;
  /** Deletes what crashed uploads and deletions left, if untouched for `olderThanMs`. */
  cleanStaging(olderThanMs: number): Promise<string[]>;
}

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
 * Where the costly part of an upload (decoding, preprocessing, writing) waits its turn, once the
 * body is on disk: a waiting upload holds no socket and no request timeout runs against it.
 */
export type ProcessingLine = <T>(work: () => Promise<T>) => Promise<T>;

/** A record without what the store gives it when it becomes visible. */
export type RecordFields = Omit<DatasetRecord, 'id' | 'createdAt'>;

/** The upload as it came, inside its staging dir; removed once parsed. */
const UPLOAD_FILE = 'upload.part';

/** The request's own fields: a wrong one fails before a byte of the body is read. */
export function checkUploadFields(upload: DatasetUpload, limits: DatasetLimits): void {
  checkUpload(upload);
  if (upload.classes) uploadClasses(upload, limits);
}

function uploadClasses(upload: DatasetUpload, limits: DatasetLimits): string[] | undefined {
  return (
    upload.classes &&
    checkClassNames(upload.classes, limits.maxClasses, '?classes=', (i) => `?classes= name ${i + 1}`)
  );
}

/**
 * Receives an upload into the local directory `staging` and leaves there every file of the
 * dataset but its record (dataset-files.ts), which it returns without id and date. The caller
 * makes the directory visible, or removes it.
 */
export async function prepareDataset(
  staging: string,
  body: NodeJS.ReadableStream | Readable,
  upload: DatasetUpload,
  limits: DatasetLimits,
  signal: AbortSignal | undefined,
  inLine: ProcessingLine,
): Promise<RecordFields> {
  const classes = uploadClasses(upload, limits);
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
  return recordFields(upload.name, parsed, split);
}

function recordFields(
  name: string,
  parsed: ParsedDataset,
  split: ReturnType<typeof splitForStorage>,
): RecordFields {
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

export function parseRecord(text: string, id: string, where: string): DatasetRecord {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new DatasetRecordError(`dataset ${id}: ${where} is not valid JSON: ${errorMessage(err)}`);
  }
  const parsed = datasetRecordSchema.safeParse(json);
  if (!parsed.success) {
    throw new DatasetRecordError(
      `dataset ${id}: ${where} is not a dataset record:\n${z.prettifyError(parsed.error)}`,
    );
  }
  if (parsed.data.id !== id) {
    throw new DatasetRecordError(`dataset ${id}: ${where} says it is ${parsed.data.id} (copied by hand?)`);
  }
  return parsed.data;
}

/** Records read at once by list(), to bound open files and requests. */
const READ_CONCURRENCY = 16;

/**
 * The records of `ids` through `get`, a few at a time, oldest first: what list() answers on both
 * backends. Those without a valid record are left out.
 */
export async function readRecords(
  ids: string[],
  get: (id: string) => Promise<DatasetRecord | null>,
): Promise<DatasetRecord[]> {
  const found: DatasetRecord[] = [];
  for (let i = 0; i < ids.length; i += READ_CONCURRENCY) {
    const records = await Promise.all(ids.slice(i, i + READ_CONCURRENCY).map((id) => validOrNull(get, id)));
    for (const record of records) if (record) found.push(record);
  }
  return found.sort(byCreation);
}

async function validOrNull(
  get: (id: string) => Promise<DatasetRecord | null>,
  id: string,
): Promise<DatasetRecord | null> {
  try {
    return await get(id);
  } catch (err) {
    if (err instanceof DatasetRecordError) return null;
    throw err;
  }
}

/** Visible datasets in the order list() gives them: oldest first, then by id. */
function byCreation(a: DatasetRecord, b: DatasetRecord): number {
  return (a.createdAt ?? '').localeCompare(b.createdAt ?? '') || a.id.localeCompare(b.id);
}
