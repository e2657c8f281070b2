import type * as tf from '@tensorflow/tfjs';
import { loadModelFromFiles, MODEL_JSON, modelFiles, WEIGHTS_BIN } from '../ml/model-io.js';
import type { TrainingReport } from '../ml/training-report-schema.js';
import type { S3Objects } from '../store/s3-objects.js';
import { digitSpritePng } from './digit-sprite.js';
import {
  checkPublication,
  METADATA_JSON,
  metadataText,
  MISCLASSIFIED_PNG,
  ModelNotFoundError,
  parseMetadata,
  versionName,
  versionOfName,
  type LoadedVersion,
  type ModelMetadata,
  type PublishOptions,
} from './model-store.js';
import { ModelStoreBase } from './model-store-base.js';
import type { VersionClaims } from './version-claims.js';

const MODELS = 'models/';
const CLAIMS = `${MODELS}.claims/`;

/**
 * The model store in S3-compatible object storage (AWS S3, MinIO, Ceph, R2, ...), under the
 * store's key prefix:
 *
 *   models/<N>/model.json, weights.bin, misclassified.png   version N's files, written first
 *   models/<N>/metadata.json                                written last: N is visible exactly when it exists
 *   models/.claims/<N>                                      N is taken; never deleted, so never reused
 *
 * S3 has no rename, so one object makes a version visible: a PUT shows all of an object or none
 * of it, and reads are strongly consistent after writes, so a reader that sees metadata.json finds
 * the files written before it. A removal deletes metadata.json first, so the version vanishes in
 * one step too; a load racing it finds the files whole or missing (ModelNotFoundError), and never
 * another version's, because a number is only ever published once.
 *
 * Numbers come from Redis (version-claims.ts), which every process already shares: its counter
 * runs in one Lua script, so two publishers never get the same number. The S3 way alone, a claim
 * marker written with `If-None-Match: *` so that the first writer wins, only works where the
 * server enforces that condition on PUT (AWS S3 does since 2024); s3rver, the S3 server our tests
 * and CI run, ignores it and would let two publishers write the same marker. The marker is still
 * written after every claim: it is the floor handed to Redis (with the version prefixes), so a
 * Redis that lost its counter never hands a number out again, and on servers that enforce the
 * condition, a refused marker (a Redis that lost its counter while another publisher held a
 * number) makes the publisher claim again above it.
 */
export class S3ModelStore extends ModelStoreBase {
  constructor(
    readonly objects: S3Objects,
    readonly claims: VersionClaims,
  ) {
    super();
  }

  get location(): string {
    return this.url(MODELS);
  }

  /** Version N's key prefix under the store's; a RangeError unless N is a positive safe integer. */
  dir(version: number): string {
    return `${MODELS}${versionName(version)}/`;
  }

  async publish(
    model: tf.LayersModel,
    report: TrainingReport,
    options: PublishOptions,
  ): Promise<ModelMetadata> {
    const checked = checkPublication(report, options);
    const files = await modelFiles(model);
    const images = options.misclassifiedImages;
    const sprite =
      images && images.length > 0 ? await digitSpritePng(images, report.misclassified.length) : undefined;
    await options.beforeVisible?.();
    const version = await this.claim();
    const dir = this.dir(version);
    try {
      await allSettled([
        this.objects.put(dir + MODEL_JSON, files.modelJson),
        this.objects.put(dir + WEIGHTS_BIN, files.weights),
        ...(sprite ? [this.objects.put(dir + MISCLASSIFIED_PNG, sprite)] : []),
      ]);
    } catch (err) {
      // Best effort: a leftover is what cleanStaging() is for; the original error is what matters.
      await this.objects.removeAll(dir).catch(() => undefined);
      throw err;
    }
    const metadata = { version, createdAt: new Date().toISOString(), ...checked };
    // Nothing is deleted when this PUT fails: it may have landed all the same (a timeout), and
    // then the version is whole and visible, and a retried job finds it by its id. If it did not
    // land, the files are a leftover for cleanStaging().
    await this.objects.put(dir + METADATA_JSON, metadataText(metadata));
    return metadata;
  }

  async get(version: number): Promise<ModelMetadata | null> {
    const name = this.dir(version) + METADATA_JSON;
    const body = await this.objects.get(name);
    return body ? parseMetadata(body.toString('utf8'), version, this.url(name)) : null;
  }

  /**
   * The three reads at once, one round trip instead of three: a version's files are written before
   * its metadata.json and deleted after it, so when metadata.json is there, files read alongside it
   * are whole or missing (a removal under way: ModelNotFoundError), never another version's.
   */
  async loadWithMetadata(version: number): Promise<LoadedVersion> {
    const dir = this.dir(version);
    const [metadataBody, modelJson, weights] = await Promise.all([
      this.objects.get(dir + METADATA_JSON),
      this.objects.get(dir + MODEL_JSON),
      this.objects.get(dir + WEIGHTS_BIN),
    ]);
    if (!metadataBody || !modelJson || !weights) throw new ModelNotFoundError(version);
    const metadata = parseMetadata(metadataBody.toString('utf8'), version, this.url(dir + METADATA_JSON));
    const model = await loadModelFromFiles({ modelJson, weights }, this.url(dir.slice(0, -1)));
    return { metadata, model };
  }

  async misclassifiedSprite(version: number): Promise<Buffer | null> {
    if (!(await this.get(version))) return null;
    return this.objects.get(this.dir(version) + MISCLASSIFIED_PNG);
  }

  async remove(version: number): Promise<boolean> {
    const dir = this.dir(version);
    if (!(await this.objects.get(dir + METADATA_JSON))) return false;
    // metadata.json first, so the version is gone for every reader at once; a crash before the
    // rest is deleted leaves files that cleanStaging() removes.
    await this.objects.remove([dir + METADATA_JSON]);
    await this.objects.removeAll(dir);
    return true;
  }

  /**
   * Deletes version prefixes without metadata.json (a crashed publication or removal) whose newest
   * object is older than `olderThanMs`. A publication uploads its files seconds before its
   * metadata.json; one that took longer than the threshold (an hour at start-up, see
   * store-cleanup.ts) has long lost its job lock. Returns the deleted key prefixes.
   */
  async cleanStaging(olderThanMs: number): Promise<string[]> {
    if (!(olderThanMs >= 0)) throw new RangeError(`olderThanMs must be >= 0, got ${olderThanMs}`);
    const cutoff = Date.now() - olderThanMs;
    const versions = new Map<number, { names: string[]; newest: number; visible: boolean }>();
    for (const object of await this.objects.list(MODELS)) {
      const [segment, ...rest] = object.name.slice(MODELS.length).split('/');
      const version = versionOfName(segment ?? '');
      if (version === null || rest.length === 0) continue;
      const entry = versions.get(version) ?? { names: [], newest: 0, visible: false };
      entry.names.push(object.name);
      entry.newest = Math.max(entry.newest, object.lastModified.getTime());
      entry.visible ||= rest.join('/') === METADATA_JSON;
      versions.set(version, entry);
    }
    const removed: string[] = [];
    for (const [version, { names, newest, visible }] of versions) {
      if (visible || newest >= cutoff) continue;
      await this.objects.remove(names);
      removed.push(this.objects.key(this.dir(version)));
    }
    return removed;
  }

  async probe(): Promise<void> {
    await this.objects.probeList(MODELS);
  }

  /** A number above every claimed or existing one, with its claim marker written. */
  private async claim(): Promise<number> {
    let floor = await this.highestTaken();
    for (;;) {
      const version = await this.claims.claim(floor);
      // The time, for whoever wonders about a claim that never became a version (and because an
      // empty body goes out as a stream of unknown length, which some servers mishandle).
      const claimed = `${new Date().toISOString()}\n`;
      if (await this.objects.put(CLAIMS + versionName(version), claimed, { ifAbsent: true })) return version;
      // Only a server that enforces If-None-Match says no: someone holds the marker already.
      floor = version;
    }
  }

  /** The highest claim marker or version prefix: prefixes count in case markers were lost. */
  private async highestTaken(): Promise<number> {
    const [claimed, prefixes] = await Promise.all([
      this.objects.children(CLAIMS),
      this.objects.children(MODELS),
    ]);
    return [...claimed, ...prefixes.map((name) => name.replace(/\/$/, ''))]
      .map(versionOfName)
      .reduce<number>((highest, n) => Math.max(highest, n ?? 0), 0);
  }

  /** Numbers of the version prefixes, ascending; visible or not. */
  protected async versionNumbers(): Promise<number[]> {
    return (await this.objects.children(MODELS))
      .filter((name) => name.endsWith('/'))
      .map((name) => versionOfName(name.slice(0, -1)))
      .filter((n): n is number => n !== null)
      .sort((a, b) => a - b);
  }

  private url(name: string): string {
    return `s3://${this.objects.bucket}/${this.objects.key(name)}`;
  }
}

/** Waits for all of `writes`, so none lands after a cleanup; then throws the first failure. */
async function allSettled(writes: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(writes)).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}
