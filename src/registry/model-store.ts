import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { defaultClasses } from '../ml/data/dataset.js';
import { IMAGE_PIXELS } from '../ml/image-shape.js';
import { loadModel, saveModel } from '../ml/model-io.js';
import { trainingReportSchema, type TrainingReport } from '../ml/training-report-schema.js';
import { errorMessage, isErrno, syncDirectory, writeDurably } from '../fs-durable.js';
import { digitSpritePng } from './digit-sprite.js';
import { entryNames, moveToTrash, promoteStaged, removeLeftovers, STAGING } from './store-cleanup.js';

/**
 * A directory of immutable, numbered model versions that many processes (on many machines) share:
 *
 *   <root>/<N>/{model.json, weights.bin, metadata.json}   version N, visible once metadata.json is in it
 *   <root>/<N>/misclassified.png                        its misclassified test digits, in metadata order
 *   <root>/.claims/<N>/                                   N is taken; never deleted, so never reused
 *   <root>/.staging/<uuid>/                               a version being written
 *   <root>/.trash/<N>-<uuid>/                             a version being deleted
 *
 * Only mkdir (exclusive) and rename (atomic) coordinate writers, which hold on a local disk and on
 * NFS alike, so no lock server is needed.
 */

const METADATA_JSON = 'metadata.json';
const MISCLASSIFIED_PNG = 'misclassified.png';
const CLAIMS = '.claims';
const VERSION_NAME = /^[1-9][0-9]*$/;
/** Metadata files read at once by list(), to bound open file descriptors. */
const READ_CONCURRENCY = 16;

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
   * publish here, so the claim comes as close as it can to the rename that makes the version visible.
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

export class ModelStore {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** Throws a RangeError unless `version` is a positive safe integer: no path is built from anything else. */
  dir(version: number): string {
    return path.join(this.root, versionName(version));
  }

  /**
   * Stores the model and its report under the next free number. The version becomes visible in
   * one rename, complete and fsynced; a crash at any point leaves at most a staging dir and a
   * claimed number that nobody will use.
   */
  async publish(
    model: tf.LayersModel,
    report: TrainingReport,
    options: PublishOptions,
  ): Promise<ModelMetadata> {
    // Checked before the slow part, so a bad report fails without touching the disk.
    const checked = parseForPublish(report, options.jobId);
    const images = options.misclassifiedImages;
    const expectedBytes = report.misclassified.length * IMAGE_PIXELS;
    if (images && images.length !== expectedBytes) {
      throw new ModelMetadataError(
        `Cannot publish: ${report.misclassified.length} misclassified digits need ${expectedBytes} bytes of pixels, got ${images.length}`,
      );
    }
    const staging = path.join(this.root, STAGING, randomUUID());
    try {
      await saveModel(model, staging);
      if (images && images.length > 0) {
        const sprite = await digitSpritePng(images, report.misclassified.length);
        await writeDurably(path.join(staging, MISCLASSIFIED_PNG), sprite);
      }
      await options.beforeVisible?.();
      for (;;) {
        const version = await this.claim();
        const metadata = { version, createdAt: new Date().toISOString(), ...checked };
        await writeMetadata(staging, metadata);
        // False when something already occupies the version's path: claim another number.
        if (await promoteStaged(this.root, staging, this.dir(version))) return metadata;
      }
    } catch (err) {
      // Best effort: a leftover is what cleanStaging() is for; the original error is what matters.
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** Visible versions, ascending. Directories with missing or invalid metadata are left out. */
  async list(): Promise<ModelMetadata[]> {
    const versions = await this.versionNumbers();
    const found: ModelMetadata[] = [];
    for (let i = 0; i < versions.length; i += READ_CONCURRENCY) {
      const chunk = versions.slice(i, i + READ_CONCURRENCY);
      const metadata = await Promise.all(chunk.map((version) => this.getIfValid(version)));
      for (const m of metadata) if (m) found.push(m);
    }
    return found;
  }

  /**
   * The version a training job already published, if any: a job retried after its worker died
   * between publishing and reporting done must not publish a second version.
   */
  async findByJob(jobId: string): Promise<ModelMetadata | null> {
    return (await this.list()).find((m) => m.jobId === jobId) ?? null;
  }

  /** Null when the version is not visible; a ModelMetadataError when its metadata.json is broken. */
  async get(version: number): Promise<ModelMetadata | null> {
    const file = path.join(this.dir(version), METADATA_JSON);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return null;
      if (isErrno(err, 'EISDIR'))
        throw new ModelMetadataError(`Model version ${version}: ${file} is a directory`);
      throw err;
    }
    return parseMetadata(text, version, file);
  }

  async latest(): Promise<ModelMetadata | null> {
    const versions = await this.versionNumbers();
    for (const version of versions.reverse()) {
      const metadata = await this.getIfValid(version);
      if (metadata) return metadata;
    }
    return null;
  }

  /** The model of a visible version; a ModelNotFoundError when there is none. The caller disposes it. */
  async load(version: number): Promise<tf.LayersModel> {
    if (!(await this.get(version))) throw new ModelNotFoundError(version);
    return loadModel(this.dir(version));
  }

  /**
   * The sprite of a visible version's misclassified test digits (see digit-sprite.ts); null when
   * the version does not exist or was published without one.
   */
  async misclassifiedSprite(version: number): Promise<Buffer | null> {
    if (!(await this.get(version))) return null;
    try {
      return await readFile(path.join(this.dir(version), MISCLASSIFIED_PNG));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return null;
      throw err;
    }
  }

  /** Deletes a version; false when there was none. Its number stays claimed, so it is never reused. */
  async remove(version: number): Promise<boolean> {
    const trashed = await moveToTrash(this.root, this.dir(version), String(version));
    if (!trashed) return false;
    await rm(trashed, { recursive: true, force: true });
    return true;
  }

  /**
   * Deletes what crashed publishers (staging dirs) and crashed removals (trash dirs) left behind,
   * if untouched for `olderThanMs`. Pick a threshold well above the time a publish takes: a live
   * publisher whose staging dir is taken fails cleanly, but it fails. Returns the deleted paths.
   */
  async cleanStaging(olderThanMs: number): Promise<string[]> {
    return removeLeftovers(this.root, olderThanMs);
  }

  /** Takes the lowest number above every claimed or existing one with an exclusive mkdir. */
  private async claim(): Promise<number> {
    const claims = path.join(this.root, CLAIMS);
    await mkdir(claims, { recursive: true });
    // Existing directories count too, in case .claims was lost or a version was copied in by hand.
    let version = Math.max(await highestNumber(claims), await highestNumber(this.root)) + 1;
    for (;;) {
      try {
        await mkdir(path.join(claims, versionName(version)));
        break;
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
        version++;
      }
    }
    // The claim must outlive a power loss once the version it guards is visible.
    await syncDirectory(claims);
    return version;
  }

  private async getIfValid(version: number): Promise<ModelMetadata | null> {
    try {
      return await this.get(version);
    } catch (err) {
      if (err instanceof ModelMetadataError) return null;
      throw err;
    }
  }

  /** Numbers of the directories that look like versions, ascending; visible or not. */
  private async versionNumbers(): Promise<number[]> {
    return (await numberedEntries(this.root)).sort((a, b) => a - b);
  }
}

function versionName(version: number): string {
  if (!modelVersionSchema.safeParse(version).success) {
    throw new RangeError(`Model version must be a positive integer, got ${String(version)}`);
  }
  return String(version);
}

const publishedFieldsSchema = modelMetadataSchema.omit({ version: true, createdAt: true });

function parseForPublish(
  report: TrainingReport,
  jobId: string | null,
): z.infer<typeof publishedFieldsSchema> {
  const parsed = publishedFieldsSchema.safeParse({ jobId, ...report });
  if (parsed.success) return parsed.data;
  throw new ModelMetadataError(
    `Cannot publish: invalid training report or job id:\n${z.prettifyError(parsed.error)}`,
  );
}

function parseMetadata(text: string, version: number, file: string): ModelMetadata {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelMetadataError(`Model version ${version}: ${file} is not valid JSON: ${errorMessage(err)}`);
  }
  const parsed = modelMetadataSchema.safeParse(withClasses(json));
  if (!parsed.success) {
    throw new ModelMetadataError(
      `Model version ${version}: ${file} is not valid metadata:\n${z.prettifyError(parsed.error)}`,
    );
  }
  if (parsed.data.version !== version) {
    throw new ModelMetadataError(
      `Model version ${version}: ${file} says it is version ${parsed.data.version} (copied by hand?)`,
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

/** Written last and under a temporary name, so a staging dir with metadata.json holds a whole model. */
async function writeMetadata(staging: string, metadata: ModelMetadata): Promise<void> {
  const tmp = path.join(staging, `${METADATA_JSON}.tmp`);
  await writeDurably(tmp, Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`, 'utf8'));
  await rename(tmp, path.join(staging, METADATA_JSON));
  await syncDirectory(staging);
}

async function numberedEntries(dir: string): Promise<number[]> {
  return (await entryNames(dir))
    .filter((name) => VERSION_NAME.test(name))
    .map(Number)
    .filter((n) => Number.isSafeInteger(n));
}

async function highestNumber(dir: string): Promise<number> {
  return (await numberedEntries(dir)).reduce((a, b) => Math.max(a, b), 0);
}
