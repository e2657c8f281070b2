import type * as tf from '@tensorflow/tfjs';
import type { TrainingReport } from '../ml/training-report-schema.js';
import {
  ModelMetadataError,
  type LoadedVersion,
  type ModelMetadata,
  type ModelStore,
  type PublishOptions,
} from './model-store.js';

/** Metadata files (or objects) read at once by list(), to bound open files and requests. */
const READ_CONCURRENCY = 16;

/**
 * What both backends answer the same way, from their own `get` and the numbers they hold: the
 * listing, the latest version, a job's version, a model without its metadata.
 */
export abstract class ModelStoreBase implements ModelStore {
  abstract readonly location: string;
  abstract publish(
    model: tf.LayersModel,
    report: TrainingReport,
    options: PublishOptions,
  ): Promise<ModelMetadata>;
  abstract get(version: number): Promise<ModelMetadata | null>;
  abstract loadWithMetadata(version: number): Promise<LoadedVersion>;
  abstract misclassifiedSprite(version: number): Promise<Buffer | null>;
  abstract remove(version: number): Promise<boolean>;
  abstract cleanStaging(olderThanMs: number): Promise<string[]>;
  abstract probe(): Promise<void>;
  /** Numbers of what looks like a version, ascending; visible or not. */
  protected abstract versionNumbers(): Promise<number[]>;

  async list(): Promise<ModelMetadata[]> {
    const versions = await this.versionNumbers();
    const found: ModelMetadata[] = [];
    for (let i = 0; i < versions.length; i += READ_CONCURRENCY) {
      const chunk = versions.slice(i, i + READ_CONCURRENCY);
      for (const m of await Promise.all(chunk.map((version) => this.getIfValid(version))))
        if (m) found.push(m);
    }
    return found;
  }

  async findByJob(jobId: string): Promise<ModelMetadata | null> {
    return (await this.list()).find((m) => m.jobId === jobId) ?? null;
  }

  async latest(): Promise<ModelMetadata | null> {
    for (const version of (await this.versionNumbers()).reverse()) {
      const metadata = await this.getIfValid(version);
      if (metadata) return metadata;
    }
    return null;
  }

  async load(version: number): Promise<tf.LayersModel> {
    return (await this.loadWithMetadata(version)).model;
  }

  /** `get`, with broken metadata counted as no version (list() and latest() skip those). */
  private async getIfValid(version: number): Promise<ModelMetadata | null> {
    try {
      return await this.get(version);
    } catch (err) {
      if (err instanceof ModelMetadataError) return null;
      throw err;
    }
  }
}
