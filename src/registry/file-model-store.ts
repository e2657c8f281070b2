import { randomUUID } from 'node:crypto';
import { access, constants, mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { loadModel, saveModel } from '../ml/model-io.js';
import type { TrainingReport } from '../ml/training-report-schema.js';
import { isErrno, syncDirectory, writeDurably } from '../fs-durable.js';
import { digitSpritePng } from './digit-sprite.js';
import {
  checkPublication,
  METADATA_JSON,
  metadataText,
  MISCLASSIFIED_PNG,
  ModelMetadataError,
  ModelNotFoundError,
  parseMetadata,
  versionName,
  versionOfName,
  type LoadedVersion,
  type ModelMetadata,
  type PublishOptions,
} from './model-store.js';
import { ModelStoreBase } from './model-store-base.js';
import { entryNames, moveToTrash, promoteStaged, removeLeftovers, STAGING } from './store-cleanup.js';

const CLAIMS = '.claims';

/**
 * The model store in a directory that many processes (on many machines) share:
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
export class FileModelStore extends ModelStoreBase {
  readonly root: string;

  constructor(root: string) {
    super();
    this.root = path.resolve(root);
  }

  get location(): string {
    return this.root;
  }

  /** Throws a RangeError unless `version` is a positive safe integer: no path is built from anything else. */
  dir(version: number): string {
    return path.join(this.root, versionName(version));
  }

  async publish(
    model: tf.LayersModel,
    report: TrainingReport,
    options: PublishOptions,
  ): Promise<ModelMetadata> {
    const checked = checkPublication(report, options);
    const images = options.misclassifiedImages;
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

  async loadWithMetadata(version: number): Promise<LoadedVersion> {
    const metadata = await this.get(version);
    if (!metadata) throw new ModelNotFoundError(version);
    try {
      return { metadata, model: await loadModel(this.dir(version)) };
    } catch (err) {
      // Deleted while it was being read: the version is gone, which is what the caller hears.
      if (!(await this.get(version).catch(() => null))) throw new ModelNotFoundError(version);
      throw err;
    }
  }

  async misclassifiedSprite(version: number): Promise<Buffer | null> {
    if (!(await this.get(version))) return null;
    try {
      return await readFile(path.join(this.dir(version), MISCLASSIFIED_PNG));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return null;
      throw err;
    }
  }

  async remove(version: number): Promise<boolean> {
    const trashed = await moveToTrash(this.root, this.dir(version), String(version));
    if (!trashed) return false;
    await rm(trashed, { recursive: true, force: true });
    return true;
  }

  async cleanStaging(olderThanMs: number): Promise<string[]> {
    return removeLeftovers(this.root, olderThanMs);
  }

  async probe(): Promise<void> {
    // A store directory that does not exist yet is an empty store: the first publish creates it.
    await access(this.root, constants.R_OK).catch((err: unknown) => {
      if (!isErrno(err, 'ENOENT')) throw err;
    });
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

  /** Numbers of the directories that look like versions, ascending; visible or not. */
  protected async versionNumbers(): Promise<number[]> {
    return (await numberedEntries(this.root)).sort((a, b) => a - b);
  }
}

/** Written last and under a temporary name, so a staging dir with metadata.json holds a whole model. */
async function writeMetadata(staging: string, metadata: ModelMetadata): Promise<void> {
  const tmp = path.join(staging, `${METADATA_JSON}.tmp`);
  await writeDurably(tmp, Buffer.from(metadataText(metadata), 'utf8'));
  await rename(tmp, path.join(staging, METADATA_JSON));
  await syncDirectory(staging);
}

async function numberedEntries(dir: string): Promise<number[]> {
  return (await entryNames(dir)).map(versionOfName).filter((n): n is number => n !== null);
}

async function highestNumber(dir: string): Promise<number> {
  return (await numberedEntries(dir)).reduce((a, b) => Math.max(a, b), 0);
}
