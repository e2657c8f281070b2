import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { predictBatch } from '../ml/predict.js';
import {
  ModelMetadataError,
  ModelNotFoundError,
  type ModelMetadata,
  type ModelStore,
} from '../registry/model-store.js';
import { serialRefresh } from '../serial-refresh.js';
import type { FeedbackEvaluations } from './feedback-evaluations.js';
import {
  examplePixels,
  FEEDBACK_DATASET,
  feedbackSplit,
  versionFeedbackAccuracySchema,
  type FeedbackExample,
  type FeedbackId,
  type VersionFeedbackAccuracy,
} from './feedback-schema.js';
import type { FeedbackStore } from './feedback-store.js';

export interface RedisFeedbackEvaluationsOptions {
  /** The caller's connection (plain commands only); it stays the caller's to close. */
  redis: Redis;
  /** REDIS_PREFIX: the keys are `<prefix>:feedback:revision` and `<prefix>:feedback:accuracy`. */
  prefix: string;
  feedback: FeedbackStore;
  models: ModelStore;
  logger: Logger;
  /** How often to look at the shared revision for changes made by other API processes. */
  pollMs: number;
  /** The newest this many versions are measured; older ones' figures are dropped. @default 20 */
  maxVersions?: number;
  /**
   * Versions measured however old they are: those aliases point to (production above all).
   * @default none
   */
  pinned?: () => Promise<number[]>;
  /** Images per model call; the event loop gets a turn between calls. @default 256 */
  chunkSize?: number;
}

/**
 * Writes a figure unless the hash holds one of a later revision (another process measured after
 * this one read the revision). A stored revision above the counter means Redis lost the counter:
 * that figure is overwritten, or no figure would ever be written again.
 */
const WRITE_FIGURE = `
local current = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local measured = tonumber(ARGV[3])
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored then
  local ok, figure = pcall(cjson.decode, stored)
  local at = ok and type(figure) == 'table' and tonumber(figure.revision)
  if at and at > measured and at <= current then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`;

/** Thrown inside a pass when close() was called, to stop between two model calls. */
class Closed extends Error {}

/**
 * Each model version's accuracy on the feedback examples, measured in the background of an API
 * process and kept in Redis, where every API process reads the same figures.
 *
 * A pass measures each of the newest `maxVersions` versions whose figure is missing or of another
 * revision than the current one. Passes never overlap; triggers during one (an example stored,
 * a version published or deleted, the revision moved by another process) make one more pass after
 * it. What a version predicts for an image never changes (versions are immutable and an id is its
 * image), so predictions are kept per version and id: after one example is added a pass predicts
 * that one image per version, not all of them again.
 */
export class RedisFeedbackEvaluations implements FeedbackEvaluations {
  private readonly revisionKey: string;
  private readonly accuracyKey: string;
  private readonly maxVersions: number;
  private readonly chunkSize: number;
  private readonly pass = serialRefresh(() => this.runPass());
  /** The promise of the last pass asked for: settled() waits until no newer one is asked for. */
  private latest: Promise<void> | undefined;
  private poll: NodeJS.Timeout | undefined;
  private closed = false;
  /** The revision the last pass measured every version at; null before one did, or after a failure. */
  private measured: number | null = null;
  /** What each version predicted for each image, by version and id. */
  private readonly predicted = new Map<number, Map<FeedbackId, number>>();

  constructor(private readonly options: RedisFeedbackEvaluationsOptions) {
    this.revisionKey = `${options.prefix}:feedback:revision`;
    this.accuracyKey = `${options.prefix}:feedback:accuracy`;
    this.maxVersions = options.maxVersions ?? 20;
    this.chunkSize = options.chunkSize ?? 256;
    if (!(Number.isSafeInteger(this.maxVersions) && this.maxVersions >= 1))
      throw new RangeError(`maxVersions must be a positive integer, got ${this.maxVersions}`);
    if (!(Number.isSafeInteger(this.chunkSize) && this.chunkSize >= 1))
      throw new RangeError(`chunkSize must be a positive integer, got ${this.chunkSize}`);
  }

  /** Runs a first pass in the background, then looks at the shared revision every `pollMs`. */
  start(): void {
    if (this.closed || this.poll) return;
    this.schedule();
    this.poll = setInterval(() => void this.checkRevision(), this.options.pollMs);
  }

  /** A version appeared or was deleted: a pass measures or drops it. */
  modelsChanged(): void {
    this.schedule();
  }

  async revision(): Promise<number> {
    const value = Number(await this.options.redis.get(this.revisionKey));
    return Number.isSafeInteger(value) && value > 0 ? value : 0;
  }

  async feedbackChanged(): Promise<number> {
    const revision = await this.options.redis.incr(this.revisionKey);
    this.schedule();
    return revision;
  }

  async all(): Promise<VersionFeedbackAccuracy[]> {
    const stored = await this.options.redis.hgetall(this.accuracyKey);
    return Object.values(stored)
      .map((text) => this.parseFigure(text))
      .filter((figure) => figure !== null)
      .sort((a, b) => a.version - b.version);
  }

  async forVersion(version: number): Promise<VersionFeedbackAccuracy | null> {
    const text = await this.options.redis.hget(this.accuracyKey, String(version));
    const figure = text === null ? null : this.parseFigure(text);
    return figure?.version === version ? figure : null;
  }

  /** Resolves once no pass is running or asked for (tests order themselves by it). */
  async settled(): Promise<void> {
    for (;;) {
      const latest = this.latest;
      await latest;
      if (latest === this.latest) return;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.poll);
    this.poll = undefined;
    await this.settled();
    this.predicted.clear();
  }

  private schedule(): void {
    if (this.closed) return;
    this.latest = this.pass();
  }

  /** Another process stored or deleted an example (or the last pass failed): a pass catches up. */
  private async checkRevision(): Promise<void> {
    try {
      if ((await this.revision()) !== this.measured) this.schedule();
    } catch (err) {
      this.options.logger.warn({ err }, 'feedback evaluations: could not read the feedback revision');
    }
  }

  /** Never throws: the background loop logs and goes on. */
  private async runPass(): Promise<void> {
    if (this.closed) return;
    let complete = false;
    let revision: number | null = null;
    try {
      revision = await this.revision();
      const versions = await this.options.models.list();
      const pinned = new Set((await this.options.pinned?.()) ?? []);
      const cut = versions.length - this.maxVersions;
      const newest = versions.filter((m, i) => i >= cut || pinned.has(m.version));
      const kept = new Set(newest.map((m) => m.version));
      await this.dropFiguresExcept(kept);
      for (const version of this.predicted.keys()) if (!kept.has(version)) this.predicted.delete(version);
      const figures = new Map((await this.all()).map((f) => [f.version, f]));
      // Newest first: the versions people most likely look at (production, the one just trained).
      const stale = newest.filter((m) => figures.get(m.version)?.revision !== revision).reverse();
      const examples = stale.length > 0 ? await this.options.feedback.list() : [];
      if (stale.length > 0) this.forgetDeleted(examples);
      const known = new Map(versions.map((m) => [m.version, m]));
      complete = true;
      for (const metadata of stale) {
        if (this.closed) return;
        complete = (await this.measureAndStore(metadata, examples, revision, known)) && complete;
      }
    } catch (err) {
      complete = false;
      if (!(err instanceof Closed))
        this.options.logger.warn({ err }, 'feedback evaluations: a pass failed; the next poll tries again');
    } finally {
      // The poll makes another pass when the revision moves away from this, or after a failure.
      this.measured = complete ? revision : null;
    }
  }

  /** False when the version could not be measured now (logged); a deleted one is no failure. */
  private async measureAndStore(
    metadata: ModelMetadata,
    examples: readonly FeedbackExample[],
    revision: number,
    known: Map<number, ModelMetadata>,
  ): Promise<boolean> {
    try {
      const figure = await this.measure(metadata, examples, revision, known);
      await this.options.redis.eval(
        WRITE_FIGURE,
        2,
        this.accuracyKey,
        this.revisionKey,
        String(metadata.version),
        JSON.stringify(figure),
        String(revision),
      );
      return true;
    } catch (err) {
      if (err instanceof Closed) throw err;
      // Deleted since the listing: the pass its deletion asks for drops its figure.
      if (err instanceof ModelNotFoundError) return true;
      this.options.logger.warn(
        { err, version: metadata.version },
        'feedback evaluations: could not measure a version on the feedback examples',
      );
      return false;
    }
  }

  /** Predictions of images no longer stored go: what is kept is bounded by what is stored. */
  private forgetDeleted(examples: readonly FeedbackExample[]): void {
    const stored = new Set(examples.map((e) => e.id));
    for (const kept of this.predicted.values())
      for (const id of kept.keys()) if (!stored.has(id)) kept.delete(id);
  }

  /** Figures of deleted versions, and of versions no longer among the newest, go. */
  private async dropFiguresExcept(measured: Set<number>): Promise<void> {
    const fields = await this.options.redis.hkeys(this.accuracyKey);
    const gone = fields.filter((field) => !measured.has(Number(field)));
    if (gone.length > 0) await this.options.redis.hdel(this.accuracyKey, ...gone);
  }

  private async measure(
    metadata: ModelMetadata,
    examples: readonly FeedbackExample[],
    revision: number,
    known: Map<number, ModelMetadata>,
  ): Promise<VersionFeedbackAccuracy> {
    const trainedOnFeedback = await this.trainedOnFeedback(metadata, known);
    const labels = new Map(metadata.classes.map((name, label) => [name, label]));
    // Examples of classes the version does not have cannot be right or wrong for it.
    const counted = examples.filter(
      (e) => labels.has(e.class) && (!trainedOnFeedback || feedbackSplit(e.id) === 'test'),
    );
    const predicted = await this.predictions(metadata.version, counted);
    const correct = counted.filter((e) => predicted.get(e.id) === labels.get(e.class)).length;
    return versionFeedbackAccuracySchema.parse({
      version: metadata.version,
      accuracy: counted.length > 0 ? correct / counted.length : null,
      correct,
      examples: counted.length,
      trainedOnFeedback,
      revision,
      evaluatedAt: new Date().toISOString(),
    });
  }

  /**
   * The version's prediction for each example, from those kept and, for images it has not seen
   * yet, from the model (loaded only then), a chunk per turn of the event loop so /predict goes
   * on answering meanwhile.
   */
  private async predictions(
    version: number,
    examples: readonly FeedbackExample[],
  ): Promise<Map<FeedbackId, number>> {
    const kept = this.predicted.get(version) ?? new Map<FeedbackId, number>();
    const todo = examples.filter((e) => !kept.has(e.id));
    if (todo.length > 0) {
      const model = await this.options.models.load(version);
      try {
        for (let start = 0; start < todo.length; start += this.chunkSize) {
          if (this.closed) throw new Closed();
          const chunk = todo.slice(start, start + this.chunkSize);
          // Bytes 0..255 to the 0..1 floats the model trained on (batches.ts) and /predict feeds.
          const images = chunk.map((e) => Float32Array.from(examplePixels(e), (byte) => byte / 255));
          predictBatch(model, images).forEach((p, i) => kept.set(chunk[i]!.id, p.label));
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      } finally {
        model.dispose();
      }
    }
    this.predicted.set(version, kept);
    return kept;
  }

  /**
   * Whether the version, or one it was fine-tuned from (params.baseVersion, version after
   * version), trained on feedback. A base deleted or unreadable ends the chain: not known to.
   */
  private async trainedOnFeedback(
    metadata: ModelMetadata,
    known: Map<number, ModelMetadata>,
  ): Promise<boolean> {
    const seen = new Set<number>();
    let current: ModelMetadata | null = metadata;
    while (current && !seen.has(current.version)) {
      seen.add(current.version);
      if (current.params.datasets?.includes(FEEDBACK_DATASET)) return true;
      const base: number | undefined = current.params.baseVersion;
      if (base === undefined) return false;
      current = known.get(base) ?? (await this.options.models.get(base).catch(nullIfBroken));
    }
    return false;
  }

  private parseFigure(text: string): VersionFeedbackAccuracy | null {
    try {
      const parsed = versionFeedbackAccuracySchema.safeParse(JSON.parse(text));
      if (parsed.success) return parsed.data;
    } catch {
      // Not JSON: as unreadable as a figure of the wrong shape.
    }
    this.options.logger.warn(
      { text: text.slice(0, 200) },
      'feedback evaluations: left out an unreadable figure',
    );
    return null;
  }
}

function nullIfBroken(err: unknown): null {
  if (err instanceof ModelMetadataError) return null;
  throw err;
}
