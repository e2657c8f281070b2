import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { defaultClasses } from '../ml/data/dataset.js';
import { IMAGE_PIXELS } from '../ml/image-shape.js';
import { trainingReportSchema, type TrainingReport } from '../ml/training-report-schema.js';
import { errorMessage } from '../fs-durable.js';

/**
 * The model store: immutable, numbered model versions that every API and worker shares. Two
 * backends keep the same promises (test/registry/model-store-contract.test.ts checks both):
 * a directory (file-model-store.ts) and S3-compatible object storage (s3-model-store.ts).
 *
 * - A version, once visible, is complete and never changes.
 * - Numbers are never reused: not after a deletion, a crash mid-publish, or by concurrent publishers.
 * - A load or read racing a deletion gets the whole version or "not found", never a mix.
 */
export interface ModelStore {
  /** Where the store is, for logs and messages: a directory or s3://bucket/prefix. */
  readonly location: string;
  /**
   * Stores the model and its report under the next free number; the version becomes visible in
   * one step, complete. A failure leaves at most leftovers for cleanStaging() and a number nobody
   * will use.
   */
  publish(model: tf.LayersModel, report: TrainingReport, options: PublishOptions): Promise<ModelMetadata>;
  /** Visible versions, ascending. Versions with missing or invalid metadata are left out. */
  list(): Promise<ModelMetadata[]>;
  /**
   * The version a training job already published, if any: a job retried after its worker died
   * between publishing and reporting done must not publish a second version.
   */
  findByJob(jobId: string): Promise<ModelMetadata | null>;
  /** Null when the version is not visible; a ModelMetadataError when its metadata is broken. */
  get(version: number): Promise<ModelMetadata | null>;
  latest(): Promise<ModelMetadata | null>;
  /** The model of a visible version; a ModelNotFoundError when there is none. The caller disposes it. */
  load(version: number): Promise<tf.LayersModel>;
  /**
   * The model and metadata of a visible version, read together (on S3 in one round of requests):
   * what an API needs to serve a version it was just told of. A ModelNotFoundError when there is none.
   */
  loadWithMetadata(version: number): Promise<LoadedVersion>;
  /** The sprite of a version's misclassified test digits (digit-sprite.ts); null when none. */
  misclassifiedSprite(version: number): Promise<Buffer | null>;
  /** Deletes a version; false when there was none. Its number stays claimed, so it is never reused. */
  remove(version: number): Promise<boolean>;
  /**
   * Deletes what crashed publishers and removals left, if untouched for `olderThanMs`. Pick a
   * threshold well above the time a publish takes. Returns what was deleted.
   */
  cleanStaging(olderThanMs: number): Promise<string[]>;
  /** Throws unless the store can be read right now (readiness). */
  probe(): Promise<void>;
}

export interface LoadedVersion {
  metadata: ModelMetadata;
  model: tf.LayersModel;
}

export const METADATA_JSON = 'metadata.json';
export const MISCLASSIFIED_PNG = 'misclassified.png';

/** z.int() is limited to safe integers, so a version always round-trips through a file name. */
export const modelVersionSchema = z.int().min(1);

/** A version's metadata.json: which version, when and from which job, then the run's report. */
export const modelMetadataSchema = z.object({
  version: modelVersionSchema,
  createdAt: z.iso.datetime(),
  jobId: z.string().nullable(),
  ...trainingReportSchema.shape,
});
export type ModelMetadata = z.infer<typeof modelMetadataSchema>;

export interface PublishOptions {
  /** The training job that produced the model, or null (e.g. the CLI). */
  jobId: string | null;
  /**
   * The pixels (28x28 bytes each) of `report.misclassified`, in its order, stored as a sprite so
   * the API can show a version's errors without the data set (issue 6). Versions without one
   * simply have no images.
   */
  misclassifiedImages?: Uint8Array;
  /**
   * Runs once the version is written aside, just before it takes a number and becomes visible;
   * throwing stops the publication and removes what was written. A worker claims its right to
   * publish here, so the claim comes as close as it can to the step that makes the version visible.
   */
  beforeVisible?: () => Promise<void>;
}

/** A version's metadata.json cannot be read as metadata, or a report cannot be stored as one. */
export class ModelMetadataError extends Error {
  override name = 'ModelMetadataError';
}

export class ModelNotFoundError extends Error {
  override name = 'ModelNotFoundError';
  constructor(readonly version: number) {
    super(`Model version ${version} does not exist`);
  }
}

/** Throws a RangeError unless `version` is a positive safe integer: no path or key is built from anything else. */
export function versionName(version: number): string {
  if (!modelVersionSchema.safeParse(version).success) {
    throw new RangeError(`Model version must be a positive integer, got ${String(version)}`);
  }
  return String(version);
}

const VERSION_NAME = /^[1-9][0-9]*$/;

/** The version a directory or key segment names; null when it names none. */
export function versionOfName(name: string): number | null {
  if (!VERSION_NAME.test(name)) return null;
  const n = Number(name);
  return Number.isSafeInteger(n) ? n : null;
}

const publishedFieldsSchema = modelMetadataSchema.omit({ version: true, createdAt: true });
export type PublishedFields = z.infer<typeof publishedFieldsSchema>;

/**
 * What a publication will write, checked before the slow part, so a bad report or a wrong number
 * of misclassified pixels fails without touching the store.
 */
export function checkPublication(report: TrainingReport, options: PublishOptions): PublishedFields {
  const parsed = publishedFieldsSchema.safeParse({ jobId: options.jobId, ...report });
  if (!parsed.success) {
    throw new ModelMetadataError(
      `Cannot publish: invalid training report or job id:\n${z.prettifyError(parsed.error)}`,
    );
  }
  const images = options.misclassifiedImages;
  const expectedBytes = report.misclassified.length * IMAGE_PIXELS;
  if (images && images.length !== expectedBytes) {
    throw new ModelMetadataError(
      `Cannot publish: ${report.misclassified.length} misclassified digits need ${expectedBytes} bytes of pixels, got ${images.length}`,
    );
  }
  return parsed.data;
}

/** metadata.json's text for a version. */
export function metadataText(metadata: ModelMetadata): string {
  return `${JSON.stringify(metadata, null, 2)}\n`;
}

export function parseMetadata(text: string, version: number, where: string): ModelMetadata {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelMetadataError(
      `Model version ${version}: ${where} is not valid JSON: ${errorMessage(err)}`,
    );
  }
  const parsed = modelMetadataSchema.safeParse(withClasses(json));
  if (!parsed.success) {
    throw new ModelMetadataError(
      `Model version ${version}: ${where} is not valid metadata:\n${z.prettifyError(parsed.error)}`,
    );
  }
  if (parsed.data.version !== version) {
    throw new ModelMetadataError(
      `Model version ${version}: ${where} says it is version ${parsed.data.version} (copied by hand?)`,
    );
  }
  return parsed.data;
}

/**
 * Versions published before class names were recorded trained on a built-in data set (or idx files
 * of digits): they get that set's names.
 */
function withClasses(json: unknown): unknown {
  if (typeof json !== 'object' || json === null || 'classes' in json) return json;
  const dataset = (json as { params?: { dataset?: unknown } }).params?.dataset;
  return { ...json, classes: defaultClasses(typeof dataset === 'string' ? dataset : 'mnist') };
}
