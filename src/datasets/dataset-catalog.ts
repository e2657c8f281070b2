import type { Readable } from 'node:stream';
import { DomainError } from '../errors.js';
import { isBuiltInDataset } from '../ml/data/dataset.js';
import { BuiltInDatasets } from './built-in-datasets.js';
import type { DatasetLimits } from './dataset-limits.js';
import type { DatasetRecord } from './dataset-record.js';
import type { DatasetStore, ProcessingLine, RemoveOptions } from './dataset-store.js';
import type { DatasetUpload } from './dataset-upload.js';

/**
 * Every dataset a job can name, as the routes show them: the built-ins (read-only) and the
 * uploaded ones of the store.
 */
export class DatasetCatalog {
  constructor(
    readonly store: DatasetStore,
    readonly builtIns: BuiltInDatasets = new BuiltInDatasets(),
  ) {}

  /** The built-ins present here first, then uploads, oldest first. */
  async list(): Promise<DatasetRecord[]> {
    const [builtIn, uploaded] = await Promise.all([this.builtIns.list(), this.store.list()]);
    return [...builtIn, ...uploaded];
  }

  /** Null for an unknown id, whatever its form. */
  async get(id: string): Promise<DatasetRecord | null> {
    return isBuiltInDataset(id) ? this.builtIns.get(id) : this.store.get(id);
  }

  async samplesPng(id: string): Promise<Buffer | null> {
    return isBuiltInDataset(id) ? this.builtIns.samplesPng(id) : this.store.samplesPng(id);
  }

  ingest(
    body: NodeJS.ReadableStream | Readable,
    upload: DatasetUpload,
    limits: DatasetLimits,
    signal?: AbortSignal,
    inLine?: ProcessingLine,
  ): Promise<DatasetRecord> {
    return this.store.ingest(body, upload, limits, signal, inLine);
  }

  /** False when there is no such dataset; a 403 for a built-in one. */
  async remove(id: string, options: RemoveOptions = {}): Promise<boolean> {
    if (isBuiltInDataset(id)) {
      throw new DomainError(`${id} is built in and cannot be deleted`, { status: 403, code: 'read_only' });
    }
    return this.store.remove(id, options);
  }
}
