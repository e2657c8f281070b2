import type * as tf from '@tensorflow/tfjs';
import type { Logger } from 'pino';
import { IMAGE_PIXELS } from '../ml/image-shape.js';
import { predictBatch, type Prediction } from '../ml/predict.js';
import { configDefaults } from '../config.js';
import { ModelNotFoundError, type ModelStore } from '../registry/model-store.js';
import { notFound, DomainError } from '../errors.js';
import { serialRefresh } from '../serial-refresh.js';
import { MicroBatcher } from './micro-batcher.js';

export interface PredictorOptions {
  store: ModelStore;
  logger: Logger;
  /** Micro-batching: most single-image requests per model call; @default configDefaults.PREDICT_MAX_BATCH */
  maxBatch?: number;
  /** Micro-batching: longest a request waits for others; @default configDefaults.PREDICT_MAX_DELAY_MS */
  maxDelayMs?: number;
  /** Pinned (non-current) versions kept loaded, least recently used out first. @default 4 */
  pinnedCacheSize?: number;
  /** Told of each model call and each model load (metrics). */
  observe?: { batch(version: number, size: number): void; load(seconds: number): void };
}

interface Loaded {
  version: number;
  model: tf.LayersModel;
  /** The name of each label, from the version's metadata. */
  classes: readonly string[];
  batcher: MicroBatcher<Float32Array, Prediction>;
}

/** A prediction with the name of its class beside the label, as the version's data set names it. */
export type NamedPrediction = Pick<Prediction, 'label'> & { class: string } & Omit<Prediction, 'label'>;

export interface PredictResult {
  modelVersion: number;
  predictions: NamedPrediction[];
}

/**
 * The model the API serves, swapped for each newer version in the background: a new version is
 * loaded and warmed with one prediction before requests see it, and the old one is freed only
 * once the requests queued for it have run, so no request fails during a swap.
 */
export class Predictor {
  private current: Loaded | undefined;
  private readonly pinned = new Map<number, Promise<Loaded>>();
  /** Versions deleted while this process ran: never served again (numbers are never reused). */
  private readonly deleted = new Set<number>();
  /**
   * The newest version announced and not yet served: loaded straight away, without looking for
   * the latest first (on an S3 store that saves a listing and a round trip per announcement).
   */
  private announced = 0;
  /** Loads the newest version in the store if it is newer than the one served. Safe to call often. */
  readonly refresh = serialRefresh(() => this.swapToLatest());

  constructor(private readonly options: PredictorOptions) {}

  get version(): number | null {
    return this.current?.version ?? null;
  }

  /** The class names of the version served by default; null while none is. */
  get classes(): readonly string[] | null {
    return this.current?.classes ?? null;
  }

  /** Heard of a published version (Redis pub/sub): an older or equal one changes nothing. */
  onVersionPublished(version: number): Promise<void> {
    if (this.current && version <= this.current.version) return Promise.resolve();
    this.announced = Math.max(this.announced, version);
    return this.refresh();
  }

  async predict(images: Float32Array[], version?: number): Promise<PredictResult> {
    if (version !== undefined && this.deleted.has(version)) throw notFound(`model version ${version}`);
    const loaded =
      version === undefined || version === this.current?.version
        ? this.current
        : await this.pinnedVersion(version);
    if (!loaded)
      throw new DomainError('No model is trained yet: start a training job with POST /jobs first', {
        status: 503,
        code: 'no_model',
      });
    let predictions: Prediction[];
    if (images.length === 1) predictions = [await loaded.batcher.submit(images[0]!)];
    else {
      predictions = predictBatch(loaded.model, images);
      this.options.observe?.batch(loaded.version, images.length);
    }
    return { modelVersion: loaded.version, predictions: predictions.map((p) => named(p, loaded.classes)) };
  }

  /** Loads a version ahead of its first request (an alias was pointed at it). */
  async preload(version: number): Promise<void> {
    if (version !== this.current?.version) await this.pinnedVersion(version);
  }

  /**
   * A version was deleted (here, or announced by another replica): requests pinned to it get a
   * 404 from now on and its model is freed. If it was the one served, the newest remaining version
   * takes over; with none left, none is served.
   */
  async evict(version: number): Promise<void> {
    this.deleted.add(version);
    const pinned = this.pinned.get(version);
    if (pinned) {
      this.pinned.delete(version);
      void pinned.then(
        (l) => this.retire(l),
        () => undefined,
      );
    }
    if (this.current?.version !== version) return;
    await this.refresh();
    const still = this.current;
    if (still?.version === version) {
      this.current = undefined;
      this.retire(still);
    }
  }

  close(): void {
    this.current?.model.dispose();
    this.current = undefined;
    for (const entry of this.pinned.values())
      void entry.then(
        (l) => l.model.dispose(),
        () => undefined,
      );
    this.pinned.clear();
  }

  private async swapToLatest(): Promise<void> {
    const announced = this.announced;
    this.announced = 0;
    if (announced > (this.current?.version ?? 0) && !this.deleted.has(announced)) {
      const next = await this.load(announced).catch((error: unknown) => {
        // Deleted since it was announced: the latest below is what to serve.
        if (error instanceof DomainError && error.status === 404) return null;
        throw error;
      });
      if (next) return this.serve(next, performance.now());
    }
    const latest = await this.options.store.latest();
    if (!latest || latest.version === this.current?.version) return;
    // An older latest only replaces the served version when that one was deleted.
    if (
      this.current &&
      latest.version < this.current.version &&
      (await this.options.store.get(this.current.version))
    )
      return;
    const started = performance.now();
    this.serve(await this.load(latest.version), started);
  }

  private serve(next: Loaded, started: number): void {
    const previous = this.current;
    this.current = next;
    this.options.logger.info(
      {
        modelVersion: next.version,
        previous: previous?.version ?? null,
        loadMs: Math.round(performance.now() - started),
      },
      'serving model version',
    );
    if (previous) this.retire(previous);
  }

  private async load(version: number): Promise<Loaded> {
    const started = performance.now();
    const { metadata, model } = await this.options.store.loadWithMetadata(version).catch((error: unknown) => {
      throw error instanceof ModelNotFoundError ? notFound(`model version ${version}`) : error;
    });
    // Warm up: the first call compiles kernels and allocates; let no user request pay for it.
    predictBatch(model, [new Float32Array(IMAGE_PIXELS)]);
    const batcher = new MicroBatcher<Float32Array, Prediction>(
      (images) => {
        this.options.observe?.batch(version, images.length);
        return predictBatch(model, images);
      },
      {
        maxBatch: this.options.maxBatch ?? configDefaults.PREDICT_MAX_BATCH,
        maxDelayMs: this.options.maxDelayMs ?? configDefaults.PREDICT_MAX_DELAY_MS,
      },
    );
    this.options.observe?.load((performance.now() - started) / 1000);
    return { version, model, classes: metadata.classes, batcher };
  }

  /** Frees a model once no request is queued for it. Predictions run synchronously, so none is mid-flight. */
  private retire(old: Loaded): void {
    const check = () => (old.batcher.waiting > 0 ? setTimeout(check, 10) : old.model.dispose());
    setTimeout(check, 10);
  }

  private async pinnedVersion(version: number): Promise<Loaded> {
    const cached = this.pinned.get(version);
    if (cached) {
      // Map order is insertion order: re-inserting marks it most recently used.
      this.pinned.delete(version);
      this.pinned.set(version, cached);
      return cached;
    }
    if (!(await this.options.store.get(version))) throw notFound(`model version ${version}`);
    const loading = this.load(version);
    this.pinned.set(version, loading);
    loading.catch(() => this.pinned.delete(version));
    const limit = this.options.pinnedCacheSize ?? 4;
    while (this.pinned.size > limit) {
      const [oldest, entry] = this.pinned.entries().next().value as [number, Promise<Loaded>];
      this.pinned.delete(oldest);
      void entry.then(
        (l) => this.retire(l),
        () => undefined,
      );
    }
    return loading;
  }
}

function named({ label, ...rest }: Prediction, classes: readonly string[]): NamedPrediction {
  // A model whose outputs outnumber its names (metadata edited by hand) still answers, by number.
  return { label, class: classes[label] ?? String(label), ...rest };
}
